/**
 * Runs once when the server starts (`next start`, the standalone server.js, `next dev`): the
 * configuration is checked there so a bad deployment says why in its first log lines, not at the first
 * request. The server keeps running: pages and /api/health report the same problems (lib/config.ts).
 */
export async function register(): Promise<void> {
  if (process.env["NEXT_RUNTIME"] !== "nodejs") return;
  const { describeProblems, readConfig } = await import("./lib/config");
  const cfg = readConfig();
  if (cfg.ok) console.log(`web: inference gateway at ${cfg.config.gatewayUrl}`);
  else
    console.error(
      `web: invalid configuration; every page and /api/health report it until it is fixed:\n${describeProblems(cfg.problems)}`,
    );
}
