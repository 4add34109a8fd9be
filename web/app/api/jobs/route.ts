import { readConfig } from "../../../lib/config";
import { misconfigured } from "../../../lib/gateway";
import { handleSubmitJob } from "../../../lib/jobs";

export const dynamic = "force-dynamic";

export async function POST(req: Request): Promise<Response> {
  const cfg = readConfig();
  if (!cfg.ok) return misconfigured(cfg.problems);
  return handleSubmitJob(req, cfg.config);
}
