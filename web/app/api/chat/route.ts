import { handleChat } from "../../../lib/chat";
import { readConfig } from "../../../lib/config";
import { misconfigured } from "../../../lib/gateway";

// Configuration is read per request from the runtime environment, never frozen in at build time.
export const dynamic = "force-dynamic";

export async function POST(req: Request): Promise<Response> {
  const cfg = readConfig();
  if (!cfg.ok) return misconfigured(cfg.problems);
  return handleChat(req, cfg.config);
}
