import { k3sGpuPools } from "../components/cluster/k3s";
import { parsePlatformConfig, type PlatformConfig } from "../components/config";
import type { Violation } from "../policies/lib/runner";
import { loadStackConfig } from "../tools/preflight/stack-config";

/** A committed stack's config as the program sees it (every secret planted), checks included. */
export function committedConfig(stack: string): PlatformConfig {
  const sc = loadStackConfig(process.cwd(), stack);
  return parsePlatformConfig(sc.config, new Set(sc.secretKeys.map((k) => k.replace(/^platform:/, ""))));
}

/**
 * K3s clusters land with issue 3; until then dev and prod run their committed config on an
 * "existing" cluster with the same GPU pools (read from the stack file, so GPUs, sharing and memory
 * stay the committed ones), so every other part is exercised end to end.
 */
export function existingClusterFor(stack: string): Record<string, unknown> {
  const { cluster } = committedConfig(stack);
  if (cluster.kind !== "k3s") throw new Error(`stack ${stack} is not a K3s stack`);
  return { "platform:cluster": { kind: "existing", distribution: "k3s", gpuPools: k3sGpuPools(cluster) } };
}

/**
 * Outside local every externally reached endpoint needs a publicly trusted certificate: the
 * config keys (flat, as Pulumi passes them) a dev or prod test config needs for that.
 */
export const PUBLIC_TLS: Readonly<Record<string, string>> = {
  "platform:registry": JSON.stringify({
    mode: "in-cluster",
    hostname: "registry.example.org",
    tls: { issuer: "acme" },
  }),
  "platform:tls": JSON.stringify({
    acme: { email: "ops@example.org", dns01: { provider: "cloudflare", zones: ["example.org"] } },
    ingress: { issuer: "acme" },
  }),
};

/**
 * The mandatory violations of a committed stack: none. (Until every image the program sets had a
 * traced digest, prod's untraced ones were let through here; now an image pinned by tag only in a
 * prod-tier stack fails every test that evaluates it.) `stack` stays for the callers' messages.
 */
export function unexpectedMandatory(_stack: string, violations: readonly Violation[]): Violation[] {
  return violations.filter((v) => v.level === "mandatory");
}
