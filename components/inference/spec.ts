/**
 * The pure decisions behind model services: container args per runtime, probe sizing, pod specs
 * (GPU versus CPU scheduling, restricted security), mesh routing and the Flagger canary (its
 * autoscaler and checks: inference/autoscaling.ts and inference/slo.ts). No resources are created
 * here, so every decision is testable on plain data.
 */
import type * as k8s from "@pulumi/kubernetes";
import type { GpuPool } from "../cluster/handle";
import type { MemoryService } from "../gpu/memory";
import { appLabels, GPU_RUNTIME_CLASS, GPU_TAINT } from "../meta";
import { imageRef, images, type ImageVersion } from "../versions";
import {
  disruptionSelector,
  flaggerCanarySpec,
  restrictedContainerSecurity,
  restrictedPodSecurity,
  STREAM_SAFE_RETRIES,
  type FlaggerAutoscalerRef,
  type FlaggerCanarySpec,
  type FlaggerMetric,
} from "../workload";
import type { InferenceConfig, InferenceServiceConfig } from "./schema";

type PodSpec = k8s.types.input.core.v1.PodSpec;
type Container = k8s.types.input.core.v1.Container;
type Probe = k8s.types.input.core.v1.Probe;

/** Component label of model servers; the mesh's AuthorizationPolicies key on it. */
export const MODEL_COMPONENT = "model-server";
/** Where the model cache volume is mounted. */
export const CACHE_DIR = "/models";
/** Where the model hub token file is mounted (HF_TOKEN_PATH points at `token` in it). */
export const HF_TOKEN_DIR = "/var/run/secrets/huggingface";
/** The key of the model hub token in its Secret. */
export const HF_TOKEN_KEY = "token";
// Shared with every platform workload; re-exported where model services always found them.
export {
  DEFAULT_CANARY_SLO,
  ENVOY_STATS_PORTS,
  PROMETHEUS_NAMESPACES,
  restrictedContainerSecurity,
  restrictedPodSecurity,
  RUN_AS,
  scrapeEndpoint,
  STREAM_SAFE_RETRIES,
  type CanarySlo,
  type FlaggerCanarySpec,
  type FlaggerMetric,
  type FlaggerMirroredAnalysis,
  type FlaggerProgressiveAnalysis,
} from "../workload";

export interface RuntimeTraits {
  readonly port: number;
  readonly image: ImageVersion;
  readonly defaultResources: { cpu: string; memory: string };
}

export const RUNTIMES: Record<InferenceServiceConfig["runtime"], RuntimeTraits> = {
  vllm: { port: 8000, image: images.vllm, defaultResources: { cpu: "4", memory: "16Gi" } },
  llamacpp: { port: 8080, image: images.llamacpp, defaultResources: { cpu: "2", memory: "4Gi" } },
};

/** The server image: the service's override or the runtime's pinned image. */
export function serverImage(s: InferenceServiceConfig, byDigest: boolean): string {
  return imageRef(s.image ?? RUNTIMES[s.runtime].image, byDigest);
}

/** Parameters in billions read from a model id ("Llama-3.1-70B" → 70, "qwen2.5-0.5b" → 0.5). */
export function modelSizeB(model: string): number | undefined {
  const hits = [...model.matchAll(/(?:^|[^a-z0-9.])(\d+(?:\.\d+)?)b(?![a-z0-9])/gi)];
  const last = hits[hits.length - 1];
  return last ? Number(last[1]) : undefined;
}

/**
 * Seconds a server may take to download and load its model before Kubernetes gives up: a first
 * start downloads the weights into the cache volume, so budgets grow with the model (capped at 1h).
 */
export function startupBudgetSeconds(runtime: InferenceServiceConfig["runtime"], model: string): number {
  const size = modelSizeB(model);
  if (runtime === "llamacpp")
    return size === undefined ? 900 : Math.min(1800, Math.max(180, 120 + size * 60));
  return size === undefined ? 1800 : Math.min(3600, Math.max(600, 600 + size * 30));
}

/** Scheduling, pulling the server image (vLLM's is ~10 GB) and creating the pod, before the model loads. */
export const POD_START_ALLOWANCE_SECONDS = 600;
/** What `pulumi up` waits beyond a Deployment's start budget before it calls the rollout failed. */
export const AWAIT_MARGIN_SECONDS = 300;

/**
 * Seconds a model Deployment may take from creation to its first ready pod: the pod start
 * allowance plus the model's startup budget (a first start downloads the weights). This is its
 * progressDeadlineSeconds; `pulumi up` awaits it (customTimeouts) for this plus AWAIT_MARGIN_SECONDS.
 */
export function deploymentStartBudgetSeconds(s: Pick<InferenceServiceConfig, "runtime" | "model">): number {
  return POD_START_ALLOWANCE_SECONDS + startupBudgetSeconds(s.runtime, s.model);
}

/** One Deployment's start budget, for checks that compare it to the await budget. */
export interface DeploymentStartBudget {
  /** Kubernetes namespace and name of the Deployment. */
  readonly namespace: string;
  readonly name: string;
  /** Seconds from creation to the first ready pod (progressDeadlineSeconds). */
  readonly startBudgetSeconds: number;
  /** Seconds `pulumi up` waits for it (its customTimeouts create/update). */
  readonly awaitSeconds: number;
  /** How the start budget is made up, for messages. */
  readonly reason: string;
}

/**
 * Per model-server Deployment of `platform:inference`, its start budget in seconds (pure: the
 * preflight compares it with what pulumi-kubernetes will await).
 */
export function deploymentStartBudgets(
  config: Pick<InferenceConfig, "namespace" | "services">,
): DeploymentStartBudget[] {
  return config.services.map((s) => {
    const startBudgetSeconds = deploymentStartBudgetSeconds(s);
    return {
      namespace: config.namespace,
      name: s.name,
      startBudgetSeconds,
      awaitSeconds: startBudgetSeconds + AWAIT_MARGIN_SECONDS,
      reason: `pod start ${POD_START_ALLOWANCE_SECONDS}s + ${s.runtime} startup of ${s.model} ${startupBudgetSeconds(s.runtime, s.model)}s`,
    };
  });
}

/** pulumi-kubernetes's create/update await for a model Deployment (its default is 10 minutes). */
export function deploymentCustomTimeouts(s: Pick<InferenceServiceConfig, "runtime" | "model">): {
  create: string;
  update: string;
} {
  const t = `${deploymentStartBudgetSeconds(s) + AWAIT_MARGIN_SECONDS}s`;
  return { create: t, update: t };
}

/** Startup, readiness and liveness probes on the server's /health. */
export function serverProbes(s: InferenceServiceConfig): {
  startup: Probe;
  readiness: Probe;
  liveness: Probe;
} {
  const http = { path: "/health", port: "http" };
  const period = 10;
  return {
    startup: {
      httpGet: http,
      periodSeconds: period,
      timeoutSeconds: 5,
      failureThreshold: Math.ceil(startupBudgetSeconds(s.runtime, s.model) / period),
    },
    readiness: { httpGet: http, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 },
    // Generous: a busy server answers /health late; restarting it would reload the whole model.
    liveness: { httpGet: http, periodSeconds: 20, timeoutSeconds: 10, failureThreshold: 6 },
  };
}

/** How llama.cpp's server finds the model: local path, URL, or a hub repo with an optional file. */
export function llamaModelArgs(model: string): string[] {
  if (model.startsWith("/")) return ["-m", model];
  if (/^https?:\/\//.test(model)) return ["--model-url", model];
  const parts = model.split("/");
  if (parts.length > 2 && model.endsWith(".gguf"))
    return ["-hf", parts.slice(0, 2).join("/"), "--hf-file", parts.slice(2).join("/")];
  return ["-hf", model];
}

/** Whole CPUs of a quantity ("500m" → 1, "4" → 4). */
export function cpuCount(q: string): number {
  return Math.max(1, Math.ceil(q.endsWith("m") ? Number(q.slice(0, -1)) / 1000 : Number(q)));
}

/** The server's command-line arguments. */
export function serverArgs(s: InferenceServiceConfig): string[] {
  const port = String(RUNTIMES[s.runtime].port);
  if (s.runtime === "vllm")
    return [
      "--model",
      s.model,
      "--port",
      port,
      "--served-model-name",
      s.name,
      "--download-dir",
      `${CACHE_DIR}/hub`,
      ...(s.gpu && s.gpu.count > 1 && !s.args.includes("--tensor-parallel-size")
        ? ["--tensor-parallel-size", String(s.gpu.count)]
        : []),
      ...(s.quantization ? ["--quantization", s.quantization] : []),
      ...s.args,
    ];
  const threads = s.threads ?? cpuCount((s.resources ?? RUNTIMES.llamacpp.defaultResources).cpu);
  return [
    "--host",
    "0.0.0.0",
    "--port",
    port,
    ...llamaModelArgs(s.model),
    "--alias",
    s.name,
    "--threads",
    String(threads),
    "--metrics",
    ...s.args,
  ];
}

/**
 * The server's home: a writable emptyDir under the read-only root filesystem. UID 1000 has no
 * passwd entry in the images, so everything that would look the user up (getpwuid for `~`,
 * getpass.getuser() for torch's default cache path) is given HOME, USER and explicit directories.
 */
export const HOME_DIR = "/home/server";
/** The user name the server reports (there is no passwd entry to read it from). */
export const RUN_AS_USER = "server";

/** Environment of the server container (no secret values: the token is a mounted file). */
export function serverEnv(s: InferenceServiceConfig): k8s.types.input.core.v1.EnvVar[] {
  const common = [
    { name: "HOME", value: HOME_DIR },
    { name: "USER", value: RUN_AS_USER },
    { name: "LOGNAME", value: RUN_AS_USER },
    { name: "XDG_CACHE_HOME", value: `${HOME_DIR}/.cache` },
    { name: "XDG_CONFIG_HOME", value: `${HOME_DIR}/.config` },
    // Model downloads are the cache volume's job: they survive restarts.
    { name: "HF_HOME", value: `${CACHE_DIR}/huggingface` },
    ...(s.hubTokenSecret ? [{ name: "HF_TOKEN_PATH", value: `${HF_TOKEN_DIR}/${HF_TOKEN_KEY}` }] : []),
  ];
  if (s.runtime === "vllm")
    return [
      ...common,
      // vLLM's own cache (torch.compile artifacts, assets) persists beside the weights.
      { name: "VLLM_CACHE_ROOT", value: `${CACHE_DIR}/vllm` },
      { name: "VLLM_CONFIG_ROOT", value: `${HOME_DIR}/.config/vllm` },
      // Compiled kernels are per pod (concurrent writers on a shared volume race): the home volume.
      { name: "TORCHINDUCTOR_CACHE_DIR", value: `${HOME_DIR}/.cache/torchinductor` },
      { name: "TRITON_HOME", value: HOME_DIR },
      { name: "TRITON_CACHE_DIR", value: `${HOME_DIR}/.cache/triton` },
      { name: "VLLM_NO_USAGE_STATS", value: "1" },
      { name: "DO_NOT_TRACK", value: "1" },
      { name: "PYTHONDONTWRITEBYTECODE", value: "1" },
    ];
  return [...common, { name: "LLAMA_CACHE", value: `${CACHE_DIR}/llama.cpp` }];
}

/** Directories the server writes, by variable: each must sit on a mounted writable volume. */
export const WRITABLE_ENV = [
  "HOME",
  "XDG_CACHE_HOME",
  "XDG_CONFIG_HOME",
  "HF_HOME",
  "VLLM_CACHE_ROOT",
  "VLLM_CONFIG_ROOT",
  "TORCHINDUCTOR_CACHE_DIR",
  "TRITON_HOME",
  "TRITON_CACHE_DIR",
  "LLAMA_CACHE",
] as const;

/** Scheduling onto a GPU pool: its node selector, the GPU taint toleration, the nvidia RuntimeClass. */
export function gpuScheduling(
  pool: GpuPool,
): Pick<PodSpec, "nodeSelector" | "tolerations" | "runtimeClassName"> {
  return {
    nodeSelector: { ...pool.nodeSelector },
    tolerations: [
      // Exists, not Equal: GPU nodes of existing clusters carry the key with other values, or none.
      { key: GPU_TAINT.key, operator: "Exists", effect: GPU_TAINT.effect },
    ],
    runtimeClassName: GPU_RUNTIME_CLASS,
  };
}

/** Requests and limits: memory limit = request; GPUs in limits, requests equal. */
export function serverResources(s: InferenceServiceConfig): k8s.types.input.core.v1.ResourceRequirements {
  const r = s.resources ?? RUNTIMES[s.runtime].defaultResources;
  const gpu: Record<string, string> = s.gpu ? { "nvidia.com/gpu": String(s.gpu.count) } : {};
  return {
    requests: { cpu: r.cpu, memory: r.memory, ...gpu },
    limits: { memory: r.memory, ...gpu },
  };
}

export interface PodSpecInputs {
  /** The service's GPU pool (required when `s.gpu` is set). */
  readonly pool?: GpuPool;
  /** Name of the model cache PVC. */
  readonly cacheClaim: string;
  /** Name of the Secret holding the hub token (when `s.hubTokenSecret`). */
  readonly hubTokenSecret?: string;
  readonly image: string;
  readonly serviceAccountName?: string;
}

/** The model server's pod spec, per runtime; GPU pods go to their pool, CPU pods never tolerate GPUs. */
export function modelPodSpec(s: InferenceServiceConfig, inputs: PodSpecInputs): PodSpec {
  if (s.gpu && !inputs.pool)
    throw new Error(`service ${s.name}: GPU pool "${s.gpu.pool}" is not in the cluster`);
  const probes = serverProbes(s);
  const container: Container = {
    name: "server",
    image: inputs.image,
    imagePullPolicy: "IfNotPresent",
    args: serverArgs(s),
    env: serverEnv(s),
    ports: [{ name: "http", containerPort: RUNTIMES[s.runtime].port, protocol: "TCP" }],
    resources: serverResources(s),
    startupProbe: probes.startup,
    readinessProbe: probes.readiness,
    livenessProbe: probes.liveness,
    securityContext: restrictedContainerSecurity(),
    volumeMounts: [
      { name: "cache", mountPath: CACHE_DIR },
      { name: "home", mountPath: HOME_DIR },
      { name: "tmp", mountPath: "/tmp" },
      ...(s.runtime === "vllm" ? [{ name: "shm", mountPath: "/dev/shm" }] : []),
      ...(s.hubTokenSecret ? [{ name: "hub-token", mountPath: HF_TOKEN_DIR, readOnly: true }] : []),
    ],
  };
  const shmLimit = s.gpu && s.gpu.count > 1 ? "16Gi" : "2Gi";
  return {
    ...(inputs.serviceAccountName ? { serviceAccountName: inputs.serviceAccountName } : {}),
    automountServiceAccountToken: false,
    securityContext: restrictedPodSecurity(),
    // Long drains let in-flight streams finish before the pod goes.
    terminationGracePeriodSeconds: 120,
    ...(s.gpu && inputs.pool ? gpuScheduling(inputs.pool) : {}),
    containers: [container],
    volumes: [
      { name: "cache", persistentVolumeClaim: { claimName: inputs.cacheClaim } },
      // Compiled kernels (inductor, Triton) and configs: per pod, rebuilt on restart.
      { name: "home", emptyDir: { sizeLimit: s.runtime === "vllm" ? "8Gi" : "1Gi" } },
      { name: "tmp", emptyDir: { sizeLimit: "2Gi" } },
      // NCCL (tensor parallel) needs a big /dev/shm; the runtime's default is 64Mi.
      ...(s.runtime === "vllm" ? [{ name: "shm", emptyDir: { medium: "Memory", sizeLimit: shmLimit } }] : []),
      ...(s.hubTokenSecret && inputs.hubTokenSecret
        ? [
            {
              name: "hub-token",
              secret: {
                secretName: inputs.hubTokenSecret,
                defaultMode: 0o400,
                items: [{ key: HF_TOKEN_KEY, path: HF_TOKEN_KEY }],
              },
            },
          ]
        : []),
    ],
  };
}

/** Labels of a model server's objects and pods. */
export function modelLabels(s: InferenceServiceConfig): Record<string, string> {
  return appLabels(s.name, MODEL_COMPONENT, s.image?.tag ?? RUNTIMES[s.runtime].image.tag);
}

/** In-cluster base URL of a service's OpenAI-compatible API. */
export function modelUrl(s: InferenceServiceConfig, namespace: string): string {
  return `http://${s.name}.${namespace}.svc.cluster.local:${RUNTIMES[s.runtime].port}/v1`;
}

/**
 * Model servers are slow to start: scale up promptly, scale down only after a calm spell (the
 * behavior of the HPA KEDA makes for the ScaledObject).
 */
export const MODEL_SCALE_BEHAVIOR = {
  scaleUp: { stabilizationWindowSeconds: 60, policies: [{ type: "Pods", value: 1, periodSeconds: 120 }] },
  scaleDown: {
    stabilizationWindowSeconds: 900,
    policies: [{ type: "Pods", value: 1, periodSeconds: 300 }],
  },
};

/** The selector of a model server's disruption budget (Flagger's primary, with canary). */
export function pdbSelector(s: InferenceServiceConfig): Record<string, string> {
  return disruptionSelector(s.name, s.canary.enabled);
}

/** Long enough for a long generation; streams are never cut by the route. */
export const MODEL_ROUTE_TIMEOUT = "3600s";

/** DestinationRule traffic policy: spread on outstanding requests, eject failing pods. */
export function modelTrafficPolicy() {
  return {
    loadBalancer: { simple: "LEAST_REQUEST" },
    connectionPool: { http: { http1MaxPendingRequests: 1024, idleTimeout: "3600s" } },
    outlierDetection: {
      consecutive5xxErrors: 5,
      interval: "30s",
      baseEjectionTime: "60s",
      maxEjectionPercent: 50,
    },
  };
}

/** In-mesh VirtualService spec for a service without canary (Flagger owns it otherwise). */
export function modelVirtualServiceSpec(s: InferenceServiceConfig, namespace: string) {
  const host = `${s.name}.${namespace}.svc.cluster.local`;
  return {
    hosts: [host],
    gateways: ["mesh"],
    http: [
      {
        name: "default",
        route: [{ destination: { host, port: { number: RUNTIMES[s.runtime].port } } }],
        timeout: MODEL_ROUTE_TIMEOUT,
        retries: { ...STREAM_SAFE_RETRIES },
      },
    ],
  };
}

/** What a model's Canary analyses and scales with (from its SLO: inference/slo.ts). */
export interface ModelCanaryInputs {
  /** The ScaledObject Flagger copies for the primary; `null` for a fixed replica count. */
  readonly autoscalerRef: FlaggerAutoscalerRef | null;
  /** The analysis' checks, thresholds from the service's SLO. */
  readonly metrics: readonly FlaggerMetric[];
}

/**
 * The Canary of a model service: a canary pod loads the whole model before it is ready, so Flagger
 * waits the service's start budget; the route keeps the model's timeout and stream-safe retries.
 * The checks are the service's SLO, so a canary that breaches it is rolled back.
 */
export function canarySpec(
  s: InferenceServiceConfig,
  namespace: string,
  inputs: ModelCanaryInputs,
): FlaggerCanarySpec {
  const port = RUNTIMES[s.runtime].port;
  return flaggerCanarySpec({
    name: s.name,
    autoscalerRef: inputs.autoscalerRef,
    metrics: inputs.metrics,
    progressDeadlineSeconds: deploymentStartBudgetSeconds(s),
    service: {
      port,
      targetPort: port,
      portName: "http",
      gateways: ["mesh"],
      hosts: [`${s.name}.${namespace}.svc.cluster.local`],
      timeout: MODEL_ROUTE_TIMEOUT,
      retries: { ...STREAM_SAFE_RETRIES },
      trafficPolicy: modelTrafficPolicy(),
    },
    canary: s.canary,
  });
}

/**
 * GPUs a service may hold at its peak: max replicas × GPUs per pod, plus the canary's minimum
 * replicas while a canary runs (Flagger scales the canary from zero to the autoscaler's minimum).
 */
export function peakGpus(s: InferenceServiceConfig): number {
  return s.gpu ? s.gpu.count * peakPods(s) : 0;
}

/** Pods a service may run at its peak: max replicas plus a running canary's (see peakGpus). */
export function peakPods(s: Pick<InferenceServiceConfig, "replicas" | "canary">): number {
  return s.replicas.max + (s.canary.enabled ? Math.max(1, s.replicas.min) : 0);
}

/**
 * What the GPU-memory check counts of a vLLM service at its peak: its reservation and weights per
 * pod, and every pod it may run. `key` is the service's config key, for the check's messages.
 */
export function memoryServiceOf(s: InferenceServiceConfig, key: string): MemoryService {
  const sizeB = modelSizeB(s.model);
  return {
    name: s.name,
    key,
    args: s.args,
    ...(s.quantization ? { quantization: s.quantization } : {}),
    ...(sizeB === undefined ? {} : { sizeB }),
    count: s.gpu?.count ?? 0,
    replicas: peakPods(s),
  };
}
