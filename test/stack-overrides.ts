import { k3sGpuPools } from "../components/cluster/k3s";
import { parsePlatformConfig, type PlatformConfig } from "../components/config";
import { images, type ImageVersion } from "../components/versions";
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
 * The mandatory violations a committed stack may have today: in a prod-tier stack,
 * `image-digest-in-prod` for exactly the third-party images that have no upstream-traceable digest
 * yet (`npm run pins` adds them online; the policy stays mandatory). Everywhere else, none.
 */
export function unexpectedMandatory(stack: string, violations: readonly Violation[]): Violation[] {
  const untraced = Object.values(images as Record<string, ImageVersion>)
    .filter((i) => !i.digest)
    .map((i) => `${i.repository}:${i.tag}`);
  const prod = committedConfig(stack).environment === "prod";
  return violations.filter(
    (v) =>
      v.level === "mandatory" &&
      !(
        prod &&
        v.policy === "image-digest-in-prod" &&
        untraced.some((ref) => v.message.includes(`image ${ref} `))
      ),
  );
}
