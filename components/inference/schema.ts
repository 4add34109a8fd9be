import { z } from "zod";
import { poolsOf, type ClusterConfig } from "../cluster/schema";
import { memoryFitProblems } from "../gpu/memory";
import type { MeshConfig } from "../mesh/schema";
import type { RegistryConfig } from "../registry/schema";
import {
  canarySchema,
  dnsLabel,
  doc,
  duplicates,
  formatKey,
  hostname,
  quantity,
  replicas,
  reservedNamespaceProblems,
  resources,
  type Environment,
  workloadProblems,
  type ConfigProblem,
} from "../schema-kit";
import type { MonitoringConfig } from "../monitoring/schema";
import { images } from "../versions";
import { autoscalingProblems, hasActivation } from "./autoscaling";
import { memoryServiceOf } from "./spec";

const accessMode = z.enum(["ReadWriteOnce", "ReadWriteMany"]);

/** K3s's bundled provisioner: node-local volumes, ReadWriteOnce only. */
export const K3S_LOCAL_PATH = { name: "local-path", accessModes: ["ReadWriteOnce" as const] };

/** An image override; `digest` is used where the stack pins by digest (prod). */
const image = z.strictObject({
  repository: z.string().min(1),
  tag: z
    .string()
    .regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/, "must be an image tag")
    .refine((t) => t !== "latest", "must be pinned, never latest"),
  digest: z
    .string()
    .regex(/^sha256:[0-9a-f]{64}$/, "must be sha256:<64 hex>")
    .optional(),
});

/** A service's objectives; each unset number is `platform:monitoring.slo`'s (inference/slo.ts). */
const serviceSloSchema = z
  .strictObject({
    timeToFirstTokenMs: z.number().int().positive().optional(),
    interTokenLatencyMs: z.number().int().positive().optional(),
    // Above zero: a zero objective leaves no error budget to burn.
    errorRatePercent: z.number().gt(0).max(100).optional(),
    queueWaitMs: z.number().int().positive().optional(),
  })
  .default({});

/** Autoscaling targets of a model server (inference/autoscaling.ts). */
const autoscalingSchema = z
  .strictObject({
    /** Requests waiting per replica; vLLM's queue-wait trigger needs none, llama.cpp's default is 1. */
    queuePerReplica: z.number().int().min(1).max(1000).optional(),
    /** vLLM: the average KV-cache use (0 to 1) above which a replica is added. */
    kvCacheUtilization: z.number().gt(0).max(1).default(0.8),
    /** Unset: the environment decides (scaleToZeroDefault). */
    scaleToZero: z.boolean().optional(),
  })
  .default({ kvCacheUtilization: 0.8 });

export const inferenceServiceSchema = z.strictObject({
  name: doc(dnsLabel, "Service name, DNS-safe and unique.", "llama-3-8b"),
  runtime: doc(z.enum(["vllm", "llamacpp"]), "vllm (GPU, OpenAI API) or llamacpp (CPU).", "vllm"),
  model: doc(
    z.string().min(1),
    "Model id (hub id for vLLM, GGUF file or URL for llama.cpp).",
    "meta-llama/Llama-3.1-8B-Instruct",
  ),
  args: doc(z.array(z.string()).default([]), "Extra server arguments.", ["--max-model-len", "8192"]),
  gpu: doc(
    z.strictObject({ pool: dnsLabel, count: z.number().int().min(1).max(16) }).optional(),
    "GPU pool and GPUs per replica (vLLM).",
    { pool: "gpu-l4", count: 1 },
  ),
  replicas: doc(replicas, "Autoscaling bounds.", { min: 1, max: 3 }),
  resources: doc(resources.optional(), "CPU and memory requests (memory is also the limit).", {
    cpu: "4",
    memory: "16Gi",
  }),
  cacheSize: doc(quantity.default("20Gi"), "Model cache volume size.", "50Gi"),
  cacheAccessMode: doc(
    accessMode.default("ReadWriteOnce"),
    "Access mode of the model cache volume; ReadWriteMany lets replicas on several nodes share it.",
    "ReadWriteMany",
  ),
  cacheStorageClass: doc(
    dnsLabel.optional(),
    "Storage class of the model cache (one of platform:inference.storageClasses; default: the cluster's default class). ReadWriteMany needs a class that provisions it.",
    "nfs-models",
  ),
  image: doc(image.optional(), "Server image override (default: the pinned one in versions.ts).", {
    repository: images.vllm.repository,
    tag: images.vllm.tag,
  }),
  quantization: doc(
    z
      .string()
      .regex(/^[a-z0-9_-]+$/, "must be a vLLM quantization method")
      .optional(),
    "vLLM --quantization method (awq, gptq, fp8, ...).",
    "awq",
  ),
  threads: doc(
    z.number().int().min(1).max(256).optional(),
    "llama.cpp --threads (default: the CPU request, rounded up).",
    4,
  ),
  canary: doc(
    canarySchema,
    "Flagger canary with automatic rollback (needs the mesh). With mirror, Flagger runs Blue/Green " +
      "mirroring: `iterations` analysis rounds mirroring `mirrorWeight`% of traffic, then switches.",
    { enabled: true, stepWeight: 10, maxWeight: 50 },
  ),
  hubTokenSecret: doc(
    z.boolean().default(false),
    "Mount the platform:hfToken secret for gated models.",
    true,
  ),
  slo: doc(
    serviceSloSchema,
    "The service's objectives; they set its burn-rate alerts, its autoscaler's queue-wait target and its canary's rollback thresholds. Each unset number is platform:monitoring.slo's.",
    { timeToFirstTokenMs: 800, interTokenLatencyMs: 80, errorRatePercent: 0.5, queueWaitMs: 300 },
  ),
  autoscaling: doc(
    autoscalingSchema,
    "KEDA scales the server on its own load, never on CPU: vLLM on the queue wait (from slo.queueWaitMs) and KV-cache use, llama.cpp on requests deferred. scaleToZero (default: on in dev, where the gateway fronts the model; off elsewhere) idles the service at zero replicas until the gateway accepts a job for it; replicas.min 0 asks for it too.",
    { kvCacheUtilization: 0.85, queuePerReplica: 4, scaleToZero: false },
  ),
});

export const inferenceSchema = z.strictObject({
  namespace: doc(dnsLabel.default("inference"), "Namespace for model services and the gateway.", "inference"),
  storageClasses: doc(
    z
      .array(z.strictObject({ name: dnsLabel, accessModes: z.array(accessMode).min(1) }))
      .default([K3S_LOCAL_PATH]),
    "Storage classes the cluster provides for model caches and the access modes each provisions (K3s ships local-path: ReadWriteOnce only; RWX classes such as NFS CSI are installed outside the platform).",
    [K3S_LOCAL_PATH, { name: "nfs-models", accessModes: ["ReadWriteOnce", "ReadWriteMany"] }],
  ),
  services: doc(z.array(inferenceServiceSchema).default([]), "Model services.", [
    { name: "qwen-0-5b", runtime: "llamacpp", model: "Qwen/Qwen2.5-0.5B-Instruct-GGUF" },
  ]),
  gateway: doc(
    z
      .strictObject({
        enabled: z.boolean().default(true),
        replicas: z.number().int().min(1).default(1),
        workers: z
          .strictObject({ min: z.number().int().min(0).default(1), max: z.number().int().min(1).default(4) })
          .default({ min: 1, max: 4 }),
        hostname: hostname.optional(),
      })
      .default({ enabled: true, replicas: 1, workers: { min: 1, max: 4 } }),
    "The platform's inference gateway (async jobs + streaming).",
    { enabled: true, replicas: 2, workers: { min: 1, max: 8 } },
  ),
});
export type InferenceConfig = z.infer<typeof inferenceSchema>;
export type InferenceServiceConfig = z.infer<typeof inferenceServiceSchema>;

/** What the inference checks read of the other sections. */
export interface InferenceInputs {
  readonly environment: Environment;
  readonly cluster: ClusterConfig;
  readonly monitoring: Pick<MonitoringConfig, "enabled">;
  readonly mesh: Pick<MeshConfig, "enabled" | "flagger" | "ingressHostname">;
  readonly registry: Pick<RegistryConfig, "enabled">;
  readonly inference: InferenceConfig;
}

/**
 * GPU memory per physical GPU (time-slicing isolates none): vLLM replicas whose reservations or
 * weights do not fit are a config error, since on the cluster they fail only once they land together.
 */
function gpuMemoryProblems(c: InferenceInputs): ConfigProblem[] {
  const { pools, poolKey } = poolsOf(c.cluster);
  return pools.flatMap((p, i) =>
    p.gpu
      ? memoryFitProblems(
          { name: p.name, key: formatKey(["cluster", poolKey, i]), gpu: p.gpu },
          c.inference.services.flatMap((s, si) =>
            s.runtime === "vllm" && s.gpu?.pool === p.name
              ? [memoryServiceOf(s, formatKey(["inference", "services", si]))]
              : [],
          ),
        ).map(({ key, message }) => ({ key, message }))
      : [],
  );
}

/** Model caches: the storage class must be declared, and must provision the access mode asked for. */
function storageProblems(c: InferenceConfig): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const classes = new Map(c.storageClasses.map((sc) => [sc.name, sc.accessModes]));
  const rwx = [...classes].filter(([, modes]) => modes.includes("ReadWriteMany")).map(([n]) => n);
  c.services.forEach((s, i) => {
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

/** Checks of `platform:inference`: its services against the cluster's pools, the mesh and the registry. */
export function inferenceChecks(c: InferenceInputs): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const inf = c.inference;
  const gpuPools = new Map(
    poolsOf(c.cluster)
      .pools.filter((p) => p.gpu)
      .map((p) => [p.name, p.gpu!]),
  );
  for (const [name, idx] of duplicates(inf.services, (s) => s.name))
    out.push({
      key: formatKey(["inference", "services", idx[1]!, "name"]),
      message: `duplicate service name "${name}"`,
    });
  inf.services.forEach((s, i) => {
    const path = ["inference", "services", i] as const;
    const at = (...rest: PropertyKey[]) => formatKey([...path, ...rest]);
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
    out.push(...workloadProblems(path, s, { mesh: c.mesh.enabled, flagger: c.mesh.flagger }));
    const scaling = {
      environment: c.environment,
      keda: inf.gateway.enabled,
      prometheus: c.monitoring.enabled,
    };
    out.push(...autoscalingProblems(path, s, scaling, hasActivation(inf, s, scaling)));
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
    if (s.hubTokenSecret && s.runtime !== "vllm")
      out.push({
        key: at("hubTokenSecret"),
        message:
          "the hub token is mounted for vLLM (HF_TOKEN_PATH); llama.cpp services take public GGUF files",
        example: "false",
      });
  });
  out.push(...gpuMemoryProblems(c));
  out.push(...storageProblems(inf));
  if (inf.gateway.workers.min > inf.gateway.workers.max)
    out.push({ key: formatKey(["inference", "gateway", "workers", "min"]), message: "min is above max" });
  if (!c.registry.enabled && inf.gateway.enabled)
    out.push({
      key: formatKey(["registry", "enabled"]),
      message:
        "the gateway's image is built and pushed to the registry; enable the registry or disable the gateway",
      example: "true",
    });
  const gwHost = inf.gateway.hostname;
  if (c.mesh.enabled && inf.gateway.enabled && gwHost && gwHost !== c.mesh.ingressHostname)
    out.push({
      key: formatKey(["inference", "gateway", "hostname"]),
      message: `the ingress Gateway and its certificate serve platform:mesh.ingressHostname ("${c.mesh.ingressHostname}"); leave this unset or equal to it`,
    });
  out.push(...reservedNamespaceProblems(["inference", "namespace"], inf.namespace));
  return out;
}
