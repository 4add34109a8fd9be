import { z } from "zod";
import { dnsLabel, doc, hostname, quantity } from "../schema-kit";

const accessMode = z.enum(["ReadWriteOnce", "ReadWriteMany"]);

/** K3s's bundled provisioner: node-local volumes, ReadWriteOnce only. */
export const K3S_LOCAL_PATH = { name: "local-path", accessModes: ["ReadWriteOnce" as const] };

const resources = z.strictObject({
  cpu: quantity,
  memory: quantity,
});

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
  replicas: doc(
    z
      .strictObject({ min: z.number().int().min(0).default(1), max: z.number().int().min(1).default(1) })
      .default({ min: 1, max: 1 }),
    "Autoscaling bounds.",
    { min: 1, max: 3 },
  ),
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
    repository: "vllm/vllm-openai",
    tag: "v0.14.0",
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
    z
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
      }),
    "Flagger canary with automatic rollback (needs the mesh). With mirror, Flagger runs Blue/Green " +
      "mirroring: `iterations` analysis rounds mirroring `mirrorWeight`% of traffic, then switches.",
    { enabled: true, stepWeight: 10, maxWeight: 50 },
  ),
  hubTokenSecret: doc(
    z.boolean().default(false),
    "Mount the platform:hfToken secret for gated models.",
    true,
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
