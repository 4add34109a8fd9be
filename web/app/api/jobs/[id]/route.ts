import { readConfig } from "../../../../lib/config";
import { misconfigured } from "../../../../lib/gateway";
import { handleGetJob } from "../../../../lib/jobs";

export const dynamic = "force-dynamic";

export async function GET(req: Request, ctx: { params: Promise<{ id: string }> }): Promise<Response> {
  const cfg = readConfig();
  if (!cfg.ok) return misconfigured(cfg.problems);
  const { id } = await ctx.params;
  return handleGetJob(req, id, cfg.config);
}
