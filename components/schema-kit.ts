/**
 * Small zod building blocks shared by every section of the stack-config schema, so each module's
 * schema reads the same way and reports problems with the same words and examples.
 */
import { z } from "zod";

/** Attaches a description and an example (shown when a value is wrong) to a schema. */
export function doc<T extends z.ZodType>(schema: T, description: string, example: unknown): T {
  return schema.meta({ description, example });
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const HOSTNAME = /^(?=.{1,253}$)([a-z0-9]([-a-z0-9]*[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** An RFC 1123 label: what Kubernetes accepts as a name (pools, services, namespaces). */
export const dnsLabel = z
  .string()
  .max(63, "must be at most 63 characters")
  .regex(
    DNS_LABEL,
    "must be a DNS label: lower-case letters, digits and '-', starting and ending alphanumeric",
  );

/** A DNS hostname (lower case). */
export const hostname = z.string().regex(HOSTNAME, "must be a DNS hostname such as gpu-01.edge.example.org");

/** Digits and dots only: meant as an IPv4 address, never a hostname (no top-level domain is numeric). */
const IPV4_LIKE = /^[0-9.]+$/;

/** Why `value` is not a host address, in words that say which kind it was taken for. */
function hostAddressMessage(value: unknown): string {
  if (typeof value !== "string") return "must be an IP address or a DNS hostname (a string)";
  if (IPV4_LIKE.test(value))
    return `"${value}" is not an IPv4 address: four numbers 0-255 separated by dots, such as 10.0.0.11`;
  if (value.includes(":")) return `"${value}" is not an IPv6 address, such as fd00::11`;
  return `"${value}" must be an IP address or a DNS hostname such as 10.0.0.11 or edge-1.example.org`;
}

/**
 * An IPv4/IPv6 address or a DNS hostname: how SSH reaches a host. Digits and dots must be a valid
 * IPv4 address (`10.20.0.300` is refused, not taken for a hostname).
 */
export const hostAddress = z.union(
  [z.ipv4(), z.ipv6(), z.string().regex(new RegExp(`^(?![0-9.]+$)${HOSTNAME.source.slice(1)}`))],
  { error: (issue) => hostAddressMessage(issue.input) },
);

/** A Kubernetes resource quantity such as 20Gi, 500m or 2. */
export const quantity = z
  .string()
  .regex(
    /^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$/,
    "must be a Kubernetes quantity such as 20Gi, 512Mi, 500m or 2",
  );

/** A Prometheus duration such as 15d or 12h. */
export const duration = z
  .string()
  .regex(/^[0-9]+(ms|s|m|h|d|w|y)$/, "must be a duration such as 30s, 12h or 15d");

/** A Kubernetes label map. */
export const labels = z.record(
  z.string().regex(/^([a-z0-9.-]+\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/, "must be a label key"),
  z.string().regex(/^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/, "must be a label value (max 63 chars)"),
);

/** A node taint. */
export const taint = z.strictObject({
  key: z.string().min(1),
  value: z.string().optional(),
  effect: z.enum(["NoSchedule", "PreferNoSchedule", "NoExecute"]),
});

/** Names that repeat in a list, for "must be unique" checks. */
export function duplicates<T>(items: readonly T[], key: (item: T) => string): Map<string, number[]> {
  const seen = new Map<string, number[]>();
  items.forEach((item, i) => seen.set(key(item), [...(seen.get(key(item)) ?? []), i]));
  return new Map([...seen].filter(([, idx]) => idx.length > 1));
}

/** The namespace of every stack-config key (`platform:<key>`). */
export const CONFIG_NAMESPACE = "platform";

/**
 * The Pulumi project (`name:` in Pulumi.yaml): the stacks' state and every URN are named for it,
 * as are the policy pack and the resources' `app.kubernetes.io/part-of` label.
 */
export const PROJECT_NAME = "ai-delivery-platform";

/** Levenshtein distance, for "did you mean" on typo'd keys. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}

/**
 * The candidate a typo'd `key` most likely meant, when one is within `tolerance` edits (default: a
 * third of its length, at least 2).
 */
export function suggest(
  key: string,
  candidates: readonly string[],
  tolerance = Math.max(2, Math.floor(key.length / 3)),
): string | undefined {
  let best: string | undefined;
  let bestDistance = tolerance + 1;
  for (const c of candidates) {
    const d = distance(key.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best;
}

/**
 * The tiers a stack can be (`platform:environment`): defaults, sizes and policy levels key on the
 * tier, never on the stack's name, so any number of stacks can share one.
 */
export const ENVIRONMENTS = ["local", "dev", "staging", "prod"] as const;
export type Environment = (typeof ENVIRONMENTS)[number];

/** One problem with the stack config. */
export interface ConfigProblem {
  /** `platform:cluster.servers[1].address` */
  readonly key: string;
  readonly message: string;
  readonly example?: string;
}

/** A key path inside the stack config: the section first (`["cluster", "servers", 1]`). */
export type KeyPath = readonly PropertyKey[];

/** `["cluster", "servers", 1, "address"]` → `platform:cluster.servers[1].address`. */
export function formatKey(path: KeyPath): string {
  const [head, ...rest] = path;
  let key = `${CONFIG_NAMESPACE}:${String(head ?? "")}`;
  for (const seg of rest) key += typeof seg === "number" ? `[${seg}]` : `.${String(seg)}`;
  return key;
}

/** Namespaces the platform's own parts (or Kubernetes) create; workloads cannot take them. */
export const RESERVED_NAMESPACES: readonly string[] = [
  "default",
  "kube-system",
  "kube-public",
  "kube-node-lease",
  "istio-system",
  "flagger",
  "monitoring",
  "cert-manager",
  "gpu-operator",
  "external-secrets",
  "keda",
];

/** A problem when `namespace` (at `path`) is one of RESERVED_NAMESPACES. */
export function reservedNamespaceProblems(path: KeyPath, namespace: string): ConfigProblem[] {
  return RESERVED_NAMESPACES.includes(namespace)
    ? [
        {
          key: formatKey(path),
          message: `"${namespace}" is a namespace the platform or Kubernetes already uses (${RESERVED_NAMESPACES.join(", ")})`,
        },
      ]
    : [];
}

/** CPU and memory requests of a container (memory is also its limit). */
export const resources = z.strictObject({ cpu: quantity, memory: quantity });

/** Autoscaling bounds of a workload (the HPA never goes below one replica). */
export const replicas = z
  .strictObject({ min: z.number().int().min(0).default(1), max: z.number().int().min(1).default(1) })
  .default({ min: 1, max: 1 });

/** A Flagger canary with automatic rollback: progressive weights, or Blue/Green mirroring. */
export const canarySchema = z
  .strictObject({
    enabled: z.boolean().default(false),
    mirror: z.boolean().default(false),
    stepWeight: z.number().int().min(1).max(50).default(10),
    maxWeight: z.number().int().min(1).max(100).default(50),
    iterations: z.number().int().min(1).max(100).default(10),
    mirrorWeight: z.number().int().min(1).max(100).default(50),
  })
  .default({
    enabled: false,
    mirror: false,
    stepWeight: 10,
    maxWeight: 50,
    iterations: 10,
    mirrorWeight: 50,
  });
export type CanaryConfig = z.infer<typeof canarySchema>;

/** What the mesh offers a workload's canary: Istio routing, and Flagger to drive it. */
export interface CanaryPlatform {
  readonly mesh: boolean;
  readonly flagger: boolean;
}

/** Replica bounds and canary settings of one workload at `path` (a model service or an app). */
export function workloadProblems(
  path: KeyPath,
  w: { readonly replicas: { min: number; max: number }; readonly canary: CanaryConfig },
  platform: CanaryPlatform,
): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const at = (...rest: PropertyKey[]) => formatKey([...path, ...rest]);
  if (w.replicas.min > w.replicas.max)
    out.push({
      key: at("replicas", "min"),
      message: `min (${w.replicas.min}) is above max (${w.replicas.max})`,
    });
  if (w.canary.enabled && !platform.mesh)
    out.push({
      key: at("canary", "enabled"),
      message: "canary needs the mesh; set platform:mesh.enabled to true or turn canary off",
    });
  if (w.canary.enabled && platform.mesh && !platform.flagger)
    out.push({
      key: at("canary", "enabled"),
      message: "canary needs Flagger; set platform:mesh.flagger to true or turn canary off",
    });
  if (w.canary.stepWeight > w.canary.maxWeight)
    out.push({ key: at("canary", "stepWeight"), message: "stepWeight must not exceed maxWeight" });
  return out;
}
