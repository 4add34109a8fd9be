import { readConfig } from "../../../lib/config";
import { misconfigured } from "../../../lib/gateway";
import { listModels } from "../../../lib/models";

export const dynamic = "force-dynamic";

export async function GET(req: Request): Promise<Response> {
  const cfg = readConfig();
  if (!cfg.ok) return misconfigured(cfg.problems);
  return Response.json(await listModels(cfg.config, req.signal), {
    headers: { "cache-control": "no-store" },
  });
}
