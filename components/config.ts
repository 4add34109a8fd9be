/**
 * The stack-config schema: every `platform:*` key, its defaults and its checks, in one place.
 * Sections live beside their components (`<module>/schema.ts`); this file composes them, adds the
 * checks that span sections, and turns every problem into one error naming the key path, what is
 * wrong and an example of a right value. Nothing is registered before this has passed.
 */
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { clusterSchema, type GpuSpec } from "./cluster/schema";
import { deliverySchema } from "./delivery/schema";
import { vercelTargets } from "./delivery/targets";
import { memoryFitProblems } from "./gpu/memory";
import { gpuSchema } from "./gpu/schema";
import { inferenceSchema } from "./inference/schema";
import { memoryServiceOf } from "./inference/spec";
import { meshSchema } from "./mesh/schema";
import { monitoringSchema } from "./monitoring/schema";
import { registrySchema } from "./registry/schema";
import { duplicates, doc } from "./schema-kit";
import { externalSecretsProblems, secretsSchema } from "./secrets/schema";
import { tlsSchema } from "./tls/schema";

export const CONFIG_NAMESPACE = "platform";

/** Every non-secret `platform:*` key. Unknown keys are rejected. */
export const platformSchema = z.strictObject({
  environment: doc(z.enum(["local", "dev", "prod"]), "Which environment this stack is.", "dev"),
  cluster: doc(clusterSchema, "Where the platform runs: K3s over SSH, or an existing cluster.", {
    kind: "existing",
  }),
  gpu: gpuSchema.default(gpuSchema.parse({})),
  registry: registrySchema.default(registrySchema.parse({})),
  tls: tlsSchema.default(tlsSchema.parse({})),
  mesh: meshSchema.default(meshSchema.parse({})),
  secrets: secretsSchema.default(secretsSchema.parse({})),
  monitoring: monitoringSchema.default(monitoringSchema.parse({})),
  inference: inferenceSchema.default(inferenceSchema.parse({})),
  delivery: deliverySchema.default(deliverySchema.parse({})),
});

export type PlatformConfig = z.infer<typeof platformSchema>;
export type Environment = PlatformConfig["environment"];

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

/** Secret keys: set with `pulumi config set --secret platform:<key>`, read with requireSecret. */
export const SECRET_KEYS = {
  sshPrivateKey: {
    description: "PEM private key SSH uses to reach K3s hosts.",
    requiredWhen: (c: PlatformConfig) => c.cluster.kind === "k3s",
  },
  kubeconfig: {
    description: "kubeconfig of an existing cluster (with cluster.kubeconfigFromSecret).",
    requiredWhen: (c: PlatformConfig) => c.cluster.kind === "existing" && c.cluster.kubeconfigFromSecret,
  },
  registryPassword: {
    description: "Password or token of an external registry.",
    requiredWhen: (c: PlatformConfig) => c.registry.enabled && c.registry.mode === "external",
  },
  acmeDnsApiToken: {
    description: "API token of the DNS provider the ACME DNS-01 solver writes challenge records with.",
    requiredWhen: (c: PlatformConfig) => acmeEndpoints(c).length > 0,
  },
  githubToken: {
    description: "GitHub token for the delivery provider (never the ambient GITHUB_TOKEN).",
    requiredWhen: (c: PlatformConfig) => c.delivery.github.enabled,
  },
  vercelApiToken: {
    description: "Vercel API token.",
    requiredWhen: (c: PlatformConfig) => c.delivery.vercel.enabled,
  },
  alertWebhookUrl: {
    description: "Alertmanager webhook URL (carries its own credential).",
    requiredWhen: (c: PlatformConfig) => c.monitoring.enabled && c.monitoring.alertWebhook,
  },
  hfToken: {
    description: "Model hub token for gated models.",
    requiredWhen: (c: PlatformConfig) => c.inference.services.some((s) => s.hubTokenSecret),
  },
  pulumiAccessToken: {
    description:
      "This stack's Pulumi access token (scoped to this stack), stored as the PULUMI_ACCESS_TOKEN secret of the stack's GitHub environment.",
    requiredWhen: (c: PlatformConfig) => c.delivery.github.enabled,
  },
} as const satisfies Record<string, { description: string; requiredWhen: (c: PlatformConfig) => boolean }>;

export type SecretKey = keyof typeof SECRET_KEYS;
export const SECRET_KEY_NAMES = Object.keys(SECRET_KEYS) as SecretKey[];

/** One problem with the stack config. */
export interface ConfigProblem {
  /** `platform:cluster.servers[1].address` */
  readonly key: string;
  readonly message: string;
  readonly example?: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: readonly ConfigProblem[]) {
    super(
      `invalid stack config (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n` +
        problems
          .map((p) => `  - ${p.key}: ${p.message}${p.example ? ` (e.g. ${p.example})` : ""}`)
          .join("\n"),
    );
    this.name = "ConfigError";
  }
}

type Path = readonly PropertyKey[];

export function formatKey(path: Path): string {
  const [head, ...rest] = path;
  let key = `${CONFIG_NAMESPACE}:${String(head ?? "")}`;
  for (const seg of rest) key += typeof seg === "number" ? `[${seg}]` : `.${String(seg)}`;
  return key;
}

interface ZodDef {
  type: string;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  innerType?: z.ZodType;
  options?: z.ZodType[];
  valueType?: z.ZodType;
  in?: z.ZodType;
}
const defOf = (s: z.ZodType) => (s as unknown as { _zod: { def: ZodDef } })._zod.def;

/** The schema node at `path`, following objects, arrays, defaults, optionals and unions. */
function schemaAt(root: z.ZodType, path: Path, value: unknown): z.ZodType[] {
  const trail: z.ZodType[] = [];
  let node: z.ZodType | undefined = root;
  let data: unknown = value;
  let i = 0;
  while (node) {
    trail.push(node);
    const def = defOf(node);
    if (def.innerType) {
      node = def.innerType;
      continue;
    }
    if (def.type === "pipe" && def.in) {
      node = def.in;
      continue;
    }
    if (def.type === "union" && def.options) {
      // Pick the branch whose literal `kind` matches the data, else the first.
      const kind = (data as { kind?: unknown } | undefined)?.kind;
      node =
        def.options.find((o) => {
          const k = defOf(o).shape?.["kind"];
          return (
            k !== undefined &&
            (k as unknown as { _zod: { def: { values?: unknown[] } } })._zod.def.values?.includes(kind)
          );
        }) ?? def.options[0];
      continue;
    }
    if (i >= path.length) break;
    const seg = path[i++]!;
    data = (data as Record<PropertyKey, unknown> | undefined)?.[seg];
    if (def.type === "object" && def.shape) node = def.shape[String(seg)];
    else if (def.type === "array") node = def.element;
    else if (def.type === "record") node = def.valueType;
    else node = undefined;
  }
  return trail;
}

function exampleAt(root: z.ZodType, path: Path, value: unknown): string | undefined {
  const trail = schemaAt(root, path, value);
  for (let i = trail.length - 1; i >= 0; i--) {
    const example = (trail[i]!.meta() as { example?: unknown } | undefined)?.example;
    if (example !== undefined) return JSON.stringify(example);
  }
  return undefined;
}

function allowedKeys(root: z.ZodType, path: Path, value: unknown): string[] {
  const trail = schemaAt(root, path, value);
  const last = trail[trail.length - 1];
  return Object.keys((last && defOf(last).shape) ?? {});
}

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

export function suggest(key: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(key.length / 3)) + 1;
  for (const c of candidates) {
    const d = distance(key.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best;
}

function problemsFromZod(error: z.ZodError, raw: Record<string, unknown>): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  for (const issue of error.issues) {
    if (issue.code === "unrecognized_keys") {
      const allowed = allowedKeys(platformSchema, issue.path, raw);
      for (const k of issue.keys) {
        const hint = suggest(k, allowed);
        out.push({
          key: issue.path.length === 0 ? `${CONFIG_NAMESPACE}:${k}` : formatKey([...issue.path, k]),
          message:
            `unknown key${hint ? ` (did you mean "${hint}"?)` : ""}; ` +
            (allowed.length ? `allowed here: ${allowed.join(", ")}` : "no keys are allowed here"),
        });
      }
      continue;
    }
    let message = issue.message;
    if (issue.code === "invalid_type" && issue.message.includes("received undefined"))
      message = "is required";
    if (issue.code === "invalid_union" && formatKey(issue.path).startsWith("platform:cluster"))
      message = 'cluster.kind must be "k3s" or "existing"';
    const example = exampleAt(platformSchema, issue.path, raw);
    out.push({ key: formatKey(issue.path), message, ...(example ? { example } : {}) });
  }
  return out;
}

/** An endpoint reached from outside the cluster, with the key choosing its certificate's issuer. */
interface ExternalEndpoint {
  readonly what: string;
  readonly issuerKey: readonly PropertyKey[];
  readonly issuer: "self-signed" | "acme";
}

/**
 * Endpoints something outside the cluster must trust: the in-cluster registry (CI's Docker pushes,
 * the nodes pull) and the ingress Gateway (the front end calls it). Each chooses its own issuer.
 */
export function externalEndpoints(c: PlatformConfig): ExternalEndpoint[] {
  const out: ExternalEndpoint[] = [];
  if (c.registry.enabled && c.registry.mode === "in-cluster")
    out.push({ what: "registry", issuerKey: ["registry", "tls", "issuer"], issuer: c.registry.tls.issuer });
  if (c.mesh.enabled)
    out.push({ what: "ingress", issuerKey: ["tls", "ingress", "issuer"], issuer: c.tls.ingress.issuer });
  return out;
}

/** Endpoints whose certificate comes from ACME. */
export function acmeEndpoints(c: PlatformConfig): ExternalEndpoint[] {
  return externalEndpoints(c).filter((e) => e.issuer === "acme");
}

function tlsProblems(c: PlatformConfig): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const acme = acmeEndpoints(c);
  if (acme.length > 0 && !c.tls.acme)
    out.push({
      key: formatKey(["tls", "acme"]),
      message: `the acme issuer (chosen by ${acme.map((e) => formatKey(e.issuerKey)).join(", ")}) needs the ACME account and its DNS-01 solver`,
      example: '{"email":"platform@example.org","dns01":{"provider":"cloudflare","zones":["example.org"]}}',
    });
  if (c.environment !== "local") {
    for (const e of externalEndpoints(c))
      if (e.issuer === "self-signed")
        out.push({
          key: formatKey(e.issuerKey),
          message: `the ${e.what} is reached from outside the cluster (CI's Docker, the nodes, the front end), which do not trust the in-cluster self-signed CA; use "acme" outside local`,
          example: '"acme"',
        });
    if (acme.length > 0 && c.tls.acme && /staging/i.test(c.tls.acme.server))
      out.push({
        key: formatKey(["tls", "acme", "server"]),
        message:
          "a staging ACME directory issues certificates nobody trusts; use the production directory outside local",
        example: '"https://acme-v02.api.letsencrypt.org/directory"',
      });
  }
  return out;
}

/** Model caches: the storage class must be declared, and must provision the access mode asked for. */
function storageProblems(c: PlatformConfig): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const classes = new Map(c.inference.storageClasses.map((sc) => [sc.name, sc.accessModes]));
  const rwx = [...classes].filter(([, modes]) => modes.includes("ReadWriteMany")).map(([n]) => n);
  c.inference.services.forEach((s, i) => {
    const key = formatKey(["inference", "services", i, "cacheStorageClass"]);
    const example = JSON.stringify(rwx[0] ?? "nfs-models");
    if (s.cacheStorageClass !== undefined && !classes.has(s.cacheStorageClass)) {
      out.push({
        key,
        message: `storage class "${s.cacheStorageClass}" is not in platform:inference.storageClasses (${[...classes.keys()].join(", ") || "none"})`,
      });
      return;
    }
    if (s.cacheAccessMode !== "ReadWriteMany") return;
    const modes = s.cacheStorageClass === undefined ? undefined : classes.get(s.cacheStorageClass);
    if (!modes?.includes("ReadWriteMany"))
      out.push({
        key,
        message:
          (s.cacheStorageClass === undefined
            ? "cacheAccessMode ReadWriteMany needs a storage class that provisions it; the cluster's default (K3s: local-path) provisions ReadWriteOnce only"
            : `storage class "${s.cacheStorageClass}" provisions ${modes!.join(", ")} only, not the ReadWriteMany of cacheAccessMode`) +
          `; set one declared with ReadWriteMany in platform:inference.storageClasses (${rwx.join(", ") || "none declared"}), or use ReadWriteOnce`,
        example,
      });
  });
  return out;
}

/**
 * GPU memory per physical GPU (time-slicing isolates none): vLLM replicas whose reservations or
 * weights do not fit are a config error, since on the cluster they fail only once they land together.
 */
function gpuMemoryProblems(
  services: PlatformConfig["inference"]["services"],
  pools: readonly { name: string; gpu?: GpuSpec }[],
  poolKey: string,
): ConfigProblem[] {
  return pools.flatMap((p, i) =>
    p.gpu
      ? memoryFitProblems(
          { name: p.name, key: formatKey(["cluster", poolKey, i]), gpu: p.gpu },
          services.flatMap((s, si) =>
            s.runtime === "vllm" && s.gpu?.pool === p.name
              ? [memoryServiceOf(s, formatKey(["inference", "services", si]))]
              : [],
          ),
        ).map(({ key, message }) => ({ key, message }))
      : [],
  );
}

/** Checks that span items or sections; they run on whatever sections parsed. */
export function crossChecks(c: PlatformConfig): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const cl = c.cluster;
  const pools: readonly { name: string; gpu?: GpuSpec }[] = cl.kind === "k3s" ? cl.pools : cl.gpuPools;
  const poolKey = cl.kind === "k3s" ? "pools" : "gpuPools";

  for (const [name, idx] of duplicates(pools, (p) => p.name))
    out.push({
      key: formatKey(["cluster", poolKey, idx[1]!, "name"]),
      message: `duplicate pool name "${name}"; pool names must be unique`,
    });

  if (cl.kind === "k3s") {
    const hosts = [...cl.servers.map((h, i) => ({ h, path: ["cluster", "servers", i] as Path }))];
    cl.pools.forEach((p, pi) =>
      p.hosts.forEach((h, hi) => hosts.push({ h, path: ["cluster", "pools", pi, "hosts", hi] })),
    );
    for (const [addr, idx] of duplicates(hosts, (x) => x.h.address))
      out.push({
        key: formatKey([...hosts[idx[1]!]!.path, "address"]),
        message: `host address ${addr} is used twice; each host belongs to one role`,
      });
    for (const [name, idx] of duplicates(hosts, (x) => x.h.name))
      out.push({
        key: formatKey([...hosts[idx[1]!]!.path, "name"]),
        message: `node name "${name}" is used twice`,
      });
    cl.pools.forEach((p, i) => {
      if (p.kind === "gpu" && !p.gpu)
        out.push({
          key: formatKey(["cluster", "pools", i, "gpu"]),
          message: "a gpu pool needs a gpu spec",
          example: '{"gpusPerNode":1}',
        });
      if (p.kind === "cpu" && p.gpu)
        out.push({
          key: formatKey(["cluster", "pools", i, "kind"]),
          message: 'a pool with a gpu spec must have kind "gpu"',
          example: '"gpu"',
        });
    });
  }
  pools.forEach((p, i) => {
    const sharing = p.gpu?.sharing;
    if (sharing?.timeSlicing && sharing.mig)
      out.push({
        key: formatKey(["cluster", poolKey, i, "gpu", "sharing"]),
        message: "timeSlicing and mig are exclusive; choose one",
      });
  });

  // The operator's MIG strategy is cluster-wide, and only the operator's MIG manager partitions GPUs.
  const migPools = pools.map((p, i) => ({ p, i })).filter(({ p }) => p.gpu?.sharing.mig);
  const strategy = migPools[0]?.p.gpu?.sharing.mig?.strategy;
  for (const { p, i } of migPools) {
    if (p.gpu?.sharing.mig?.strategy !== strategy)
      out.push({
        key: formatKey(["cluster", poolKey, i, "gpu", "sharing", "mig", "strategy"]),
        message: `MIG strategy is cluster-wide; pool "${migPools[0]!.p.name}" uses "${strategy}"`,
        example: JSON.stringify(strategy),
      });
    if (c.gpu.enabled && c.gpu.mode !== "operator")
      out.push({
        key: formatKey(["cluster", poolKey, i, "gpu", "sharing", "mig"]),
        message: 'MIG needs the GPU operator\'s MIG manager; set platform:gpu.mode to "operator"',
      });
  }

  const gpuPools = new Map(pools.filter((p) => p.gpu).map((p) => [p.name, p.gpu!]));
  for (const [name, idx] of duplicates(c.inference.services, (s) => s.name))
    out.push({
      key: formatKey(["inference", "services", idx[1]!, "name"]),
      message: `duplicate service name "${name}"`,
    });
  c.inference.services.forEach((s, i) => {
    const at = (...rest: PropertyKey[]) => formatKey(["inference", "services", i, ...rest]);
    if (s.runtime === "vllm" && !s.gpu)
      out.push({
        key: at("gpu"),
        message: "a vllm service needs a GPU pool and count",
        example: '{"pool":"gpu-l4","count":1}',
      });
    if (s.gpu) {
      const pool = gpuPools.get(s.gpu.pool);
      if (!pool)
        out.push({
          key: at("gpu", "pool"),
          message: `no GPU pool "${s.gpu.pool}"; GPU pools: ${[...gpuPools.keys()].join(", ") || "(none)"}`,
        });
      else if (pool.sharing.timeSlicing && s.gpu.count > 1)
        out.push({
          key: at("gpu", "count"),
          message: `pool "${s.gpu.pool}" is time-sliced: more than 1 slice per replica adds no compute (slices may share one GPU); use 1, or a pool without time-slicing`,
          example: "1",
        });
      else if (s.gpu.count > pool.gpusPerNode)
        out.push({
          key: at("gpu", "count"),
          message: `${s.gpu.count} GPUs exceed the ${pool.gpusPerNode} per node of pool "${s.gpu.pool}" (a replica runs on one node)`,
        });
    }
    if (s.replicas.min > s.replicas.max)
      out.push({
        key: at("replicas", "min"),
        message: `min (${s.replicas.min}) is above max (${s.replicas.max})`,
      });
    if (s.canary.enabled && !c.mesh.enabled)
      out.push({
        key: at("canary", "enabled"),
        message: "canary needs the mesh; set platform:mesh.enabled to true or turn canary off",
      });
    if (s.canary.enabled && c.mesh.enabled && !c.mesh.flagger)
      out.push({
        key: at("canary", "enabled"),
        message: "canary needs Flagger; set platform:mesh.flagger to true or turn canary off",
      });
    if (s.runtime === "llamacpp" && s.gpu)
      out.push({
        key: at("gpu"),
        message: "llamacpp runs on CPU here; remove gpu or use the vllm runtime",
      });
    if (s.runtime === "llamacpp" && s.quantization)
      out.push({
        key: at("quantization"),
        message: "quantization is a vLLM option; for llama.cpp pick a quantized GGUF file instead",
      });
    if (s.runtime === "vllm" && s.threads !== undefined)
      out.push({ key: at("threads"), message: "threads is a llama.cpp option" });
    if (s.canary.stepWeight > s.canary.maxWeight)
      out.push({ key: at("canary", "stepWeight"), message: "stepWeight must not exceed maxWeight" });
  });
  out.push(...gpuMemoryProblems(c.inference.services, pools, poolKey));
  out.push(...storageProblems(c));
  if (c.inference.gateway.workers.min > c.inference.gateway.workers.max)
    out.push({ key: formatKey(["inference", "gateway", "workers", "min"]), message: "min is above max" });

  if (c.registry.enabled && c.registry.mode === "external" && !c.registry.external)
    out.push({
      key: formatKey(["registry", "external"]),
      message: "external mode needs the external server and username",
      example: '{"server":"ghcr.io","username":"platform-bot"}',
    });
  if (c.registry.enabled && c.registry.mode === "in-cluster" && c.registry.external)
    out.push({
      key: formatKey(["registry", "external"]),
      message: 'is only used in external mode; set platform:registry.mode to "external" or remove it',
    });
  if (
    c.registry.enabled &&
    c.registry.mode === "in-cluster" &&
    c.mesh.enabled &&
    c.registry.hostname === c.mesh.ingressHostname
  )
    out.push({
      key: formatKey(["registry", "hostname"]),
      message: `must differ from platform:mesh.ingressHostname (${c.mesh.ingressHostname}): the registry terminates its own TLS behind the gateway (SNI passthrough)`,
      example: '"registry.example.org"',
    });
  if (!c.registry.enabled && c.inference.gateway.enabled)
    out.push({
      key: formatKey(["registry", "enabled"]),
      message:
        "the gateway's image is built and pushed to the registry; enable the registry or disable the gateway",
      example: "true",
    });
  out.push(...tlsProblems(c));
  const gh = c.delivery.github;
  if (gh.enabled) {
    if (!gh.owner)
      out.push({
        key: formatKey(["delivery", "github", "owner"]),
        message: "is required when github is enabled",
        example: '"acme"',
      });
    if (!gh.repository)
      out.push({
        key: formatKey(["delivery", "github", "repository"]),
        message: "is required when github is enabled",
        example: '"ai-platform"',
      });
  }
  if (c.delivery.vercel.enabled && !c.delivery.vercel.project)
    out.push({
      key: formatKey(["delivery", "vercel", "project"]),
      message: "is required when vercel is enabled",
      example: '"ai-platform-web"',
    });
  const reviewerCount = gh.reviewers.users.length + gh.reviewers.teams.length;
  if (c.environment === "prod" && gh.enabled && reviewerCount === 0)
    out.push({
      key: formatKey(["delivery", "github", "reviewers"]),
      message: "prod needs at least one required reviewer",
      example: '{"teams":["platform-leads"]}',
    });
  if (reviewerCount > 6)
    out.push({
      key: formatKey(["delivery", "github", "reviewers"]),
      message: `GitHub allows at most 6 required reviewers per environment; ${reviewerCount} given`,
    });
  const vc = c.delivery.vercel;
  const targets = vercelTargets(c.environment, vc);
  if (vc.enabled && vc.domain && !targets.includes("production"))
    out.push({
      key: formatKey(["delivery", "vercel", "domain"]),
      message: "a production domain needs the production target in platform:delivery.vercel.targets",
      example: '["production"]',
    });
  // Namespaces: each platform-created namespace has one owner, or `pulumi up` fails on "already exists".
  const nsKeys: [string, string][] = [
    ["inference.namespace", c.inference.namespace],
    ...(c.registry.enabled && c.registry.mode === "in-cluster"
      ? ([["registry.namespace", c.registry.namespace]] as [string, string][])
      : []),
  ];
  for (const [key, ns] of nsKeys)
    if (RESERVED_NAMESPACES.includes(ns))
      out.push({
        key: formatKey(key.split(".")),
        message: `"${ns}" is a namespace the platform or Kubernetes already uses (${RESERVED_NAMESPACES.join(", ")})`,
      });
  if (nsKeys.length === 2 && nsKeys[0]![1] === nsKeys[1]![1])
    out.push({
      key: formatKey(["registry", "namespace"]),
      message: `must differ from platform:inference.namespace ("${nsKeys[0]![1]}")`,
      example: '"registry"',
    });
  const gwHost = c.inference.gateway.hostname;
  if (c.mesh.enabled && c.inference.gateway.enabled && gwHost && gwHost !== c.mesh.ingressHostname)
    out.push({
      key: formatKey(["inference", "gateway", "hostname"]),
      message: `the ingress Gateway and its certificate serve platform:mesh.ingressHostname ("${c.mesh.ingressHostname}"); leave this unset or equal to it`,
    });
  c.inference.services.forEach((s, i) => {
    if (s.hubTokenSecret && s.runtime !== "vllm")
      out.push({
        key: formatKey(["inference", "services", i, "hubTokenSecret"]),
        message:
          "the hub token is mounted for vLLM (HF_TOKEN_PATH); llama.cpp services take public GGUF files",
        example: "false",
      });
  });
  if (vc.enabled && vc.manageProject && !(gh.owner && gh.repository))
    out.push({
      key: formatKey(["delivery", "vercel", "manageProject"]),
      message:
        "creating the Vercel project links it to the repository: set platform:delivery.github.owner and repository",
    });
  for (const p of externalSecretsProblems(c.secrets.externalSecrets))
    out.push({
      key: formatKey(["secrets", "externalSecrets", p.field]),
      message: p.message,
      example: p.example,
    });
  return out;
}

/**
 * Parses raw `platform:*` config (values as Pulumi stores them: JSON text for objects) into a typed
 * config, or throws one ConfigError listing every problem.
 */
export function parsePlatformConfig(
  rawConfig: Readonly<Record<string, string>>,
  presentSecrets: ReadonlySet<string> = new Set(),
): PlatformConfig {
  const raw: Record<string, unknown> = {};
  const problems: ConfigProblem[] = [];
  const prefix = `${CONFIG_NAMESPACE}:`;
  for (const [fullKey, text] of Object.entries(rawConfig)) {
    if (!fullKey.startsWith(prefix)) continue;
    const key = fullKey.slice(prefix.length);
    if (key in SECRET_KEYS) continue;
    try {
      raw[key] = JSON.parse(text) as unknown;
    } catch {
      raw[key] = text; // plain strings are stored unquoted
    }
  }
  const parsed = platformSchema.safeParse(raw);
  if (!parsed.success) problems.push(...problemsFromZod(parsed.error, raw));
  // Run the cross-section checks on the sections that did parse, so all problems surface at once.
  const partial = parsed.success ? parsed.data : salvage(raw);
  if (partial) problems.push(...crossChecks(partial));
  if (partial) {
    for (const name of SECRET_KEY_NAMES) {
      if (SECRET_KEYS[name].requiredWhen(partial) && !presentSecrets.has(name))
        problems.push({
          key: `${CONFIG_NAMESPACE}:${name}`,
          message: `secret is required (${SECRET_KEYS[name].description}); set it with \`pulumi config set --secret ${CONFIG_NAMESPACE}:${name} <value>\``,
        });
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return parsed.data!;
}

/** Best-effort config where every section that parses is kept and the others take their defaults. */
function salvage(raw: Record<string, unknown>): PlatformConfig | undefined {
  const shape = platformSchema.shape;
  const out: Record<string, unknown> = {};
  for (const [key, schema] of Object.entries(shape)) {
    const r = (schema as z.ZodType).safeParse(raw[key]);
    if (r.success) out[key] = r.data;
    else {
      const fallback = (schema as z.ZodType).safeParse(undefined);
      if (!fallback.success) return undefined; // a required section is broken; cross-checks would only echo it
      out[key] = fallback.data;
    }
  }
  return out as PlatformConfig;
}

/** Stack secrets as Pulumi secret outputs; only the keys that are set. */
export type PlatformSecrets = Readonly<Partial<Record<SecretKey, pulumi.Output<string>>>>;

/** Reads and validates the current stack's config; throws ConfigError before anything is registered. */
export function loadPlatformConfig(): { config: PlatformConfig; secrets: PlatformSecrets } {
  const all = pulumi.runtime.allConfig();
  const cfg = new pulumi.Config(CONFIG_NAMESPACE);
  const present = new Set(SECRET_KEY_NAMES.filter((k) => all[`${CONFIG_NAMESPACE}:${k}`] !== undefined));
  const config = parsePlatformConfig(all, present);
  const secrets: Partial<Record<SecretKey, pulumi.Output<string>>> = {};
  for (const key of present) secrets[key] = cfg.requireSecret(key);
  return { config, secrets };
}

/** The secret, or a clear error naming the key to set. */
export function requireSecretValue(secrets: PlatformSecrets, key: SecretKey): pulumi.Output<string> {
  const value = secrets[key];
  if (!value)
    throw new ConfigError([
      { key: `${CONFIG_NAMESPACE}:${key}`, message: `secret is required: ${SECRET_KEYS[key].description}` },
    ]);
  return value;
}
