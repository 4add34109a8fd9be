import { readConfig } from "../../../lib/config";

export const dynamic = "force-dynamic";

/**
 * Readiness: 200 when the configuration is valid, 503 naming each bad variable otherwise. It does not
 * call the gateway: a gateway outage must not take every replica of this app out of its Service (the
 * pages say what failed instead), and probes must stay cheap.
 */
export function GET(): Response {
  const cfg = readConfig();
  const headers = { "cache-control": "no-store" };
  if (cfg.ok) return Response.json({ status: "ok" }, { headers });
  return Response.json({ status: "misconfigured", problems: cfg.problems }, { status: 503, headers });
}
