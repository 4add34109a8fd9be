/**
 * GPU memory fit. Time-slicing shares a GPU's compute, not its memory: every replica on a physical
 * GPU keeps its own allocation, and vLLM reserves `--gpu-memory-utilization` (default 0.9) of the
 * whole GPU at start. Counting slices says two replicas fit one L4; counting memory says the second
 * one runs out. The scheduler picks any slice, so the check assumes the worst placement: as many
 * replicas as the GPU has slices (or as exist) on one GPU. The config check turns every problem
 * found here into an error, so an overcommitted stack never reaches the cluster.
 */
import type { GpuSpec } from "../cluster/schema";

/** vLLM's default share of GPU memory per instance. */
export const VLLM_DEFAULT_MEMORY_UTILIZATION = 0.9;

/**
 * Memory per GPU (MiB) of common products as the driver reports it (nvidia-smi memory.total): that
 * total is what vLLM's fraction is taken of, and it is below the marketed size (an L4's "24 GB" is
 * 22.5 GiB).
 */
const KNOWN_MEMORY_MIB: readonly [RegExp, number][] = [
  [/\bL4\b/i, 23034],
  [/\bT4\b/i, 15360],
  [/\bA10G?\b/i, 23028],
  [/\bL40S?\b/i, 46068],
  [/\bA100.*40/i, 40960],
  [/\bA100\b/i, 81920],
  [/\bH100\b/i, 81559],
  [/\bH200\b/i, 143771],
];

type PoolGpu = Pick<GpuSpec, "product" | "sharing" | "memoryGiB">;

/** Memory of one physical GPU (GiB): the pool's `gpu.memoryGiB`, else the known product's. */
export function gpuMemoryGiB(gpu: Pick<GpuSpec, "product" | "memoryGiB">): number | undefined {
  if (gpu.memoryGiB !== undefined) return gpu.memoryGiB;
  const mib = KNOWN_MEMORY_MIB.find(([re]) => gpu.product && re.test(gpu.product))?.[1];
  return mib === undefined ? undefined : mib / 1024;
}

/**
 * Memory of one schedulable device (GiB): a MIG slice has only its own (`all-1g.10gb` → 10),
 * anything else the whole GPU's. `all-balanced` mixes slice sizes, so no single figure holds.
 */
export function deviceMemoryGiB(gpu: PoolGpu): number | undefined {
  const profile = gpu.sharing.mig?.profile;
  const slice = profile ? /^all-\d+g\.(\d+)gb$/.exec(profile) : null;
  if (slice) return Number(slice[1]);
  if (profile === "all-balanced") return undefined;
  return gpuMemoryGiB(gpu);
}

/** `--gpu-memory-utilization` from vLLM args (`--flag v` or `--flag=v`), else vLLM's default. */
export function memoryUtilization(args: readonly string[]): number {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const v = a.startsWith("--gpu-memory-utilization=")
      ? a.slice("--gpu-memory-utilization=".length)
      : a === "--gpu-memory-utilization"
        ? args[i + 1]
        : undefined;
    if (v !== undefined && Number.isFinite(Number(v))) return Number(v);
  }
  return VLLM_DEFAULT_MEMORY_UTILIZATION;
}

/** Bytes per parameter of the weights by vLLM quantization (fp16/bf16 when none). */
export function bytesPerParam(quantization?: string): number {
  if (!quantization) return 2;
  if (/^(awq|gptq|awq_marlin|gptq_marlin|bitsandbytes|gguf)/.test(quantization)) return 0.5;
  return 1; // fp8, int8 and friends
}

/** Weights of a model (GiB), when its size is known. */
export function weightsGiB(sizeB: number | undefined, quantization?: string): number | undefined {
  return sizeB === undefined ? undefined : (sizeB * bytesPerParam(quantization) * 1e9) / 2 ** 30;
}

export interface MemoryService {
  readonly name: string;
  /** Config key of the service (`platform:inference.services[0]`), for messages that say what to set. */
  readonly key: string;
  readonly args: readonly string[];
  readonly quantization?: string;
  /** Billions of parameters, when the model id tells. */
  readonly sizeB?: number;
  /** GPUs (slices) per replica (tensor parallel). */
  readonly count: number;
  /** Peak pods (max replicas plus a running canary's). */
  readonly replicas: number;
}

export interface MemoryPool {
  readonly name: string;
  /** Config key of the pool (`platform:cluster.pools[1]`). */
  readonly key: string;
  readonly gpu: PoolGpu;
}

export interface MemoryFitProblem {
  /** The config key the problem is reported at. */
  readonly key: string;
  /** Services involved. */
  readonly services: readonly string[];
  /** What does not fit, with the numbers, and what to set. */
  readonly message: string;
}

const gib = (n: number) => `${Math.round(n * 10) / 10} GiB`;
/** Rounded down to hundredths, so a suggested share never rounds up past what fits. */
const floor2 = (n: number) => Math.floor(n * 100 + 1e-9) / 100;
/** Shares summing to at most the whole GPU fit; the epsilon absorbs float sums such as 0.1 × 10. */
const fitsOneGpu = (sum: number) => sum <= 1 + 1e-9;

/**
 * Weights that do not fit the memory reserved for them (utilization × device memory × GPUs). Only
 * remedies that apply are offered: a higher share only while one below 0.95 would hold the weights,
 * and more GPUs per replica only off time-sliced pools (slices of one GPU add no memory).
 */
function weightsProblem(pool: MemoryPool, mem: number, s: MemoryService): MemoryFitProblem | undefined {
  const weights = weightsGiB(s.sizeB, s.quantization);
  const u = memoryUtilization(s.args);
  const reserved = u * mem * s.count;
  if (weights === undefined || weights < reserved) return undefined;
  const needed = Math.ceil((weights / (mem * s.count)) * 100 + 1e-9) / 100;
  const remedies = [
    `set ${s.key}.quantization (with a quantized model)`,
    ...(pool.gpu.sharing.timeSlicing ? [] : [`more GPUs per replica in ${s.key}.gpu.count`]),
    ...(needed < 0.95 ? [`--gpu-memory-utilization above ${needed} in ${s.key}.args`] : []),
    "a pool with bigger GPUs",
  ];
  return {
    key: `${s.key}.model`,
    services: [s.name],
    message: `the weights of ${s.sizeB}B parameters${s.quantization ? ` (${s.quantization})` : ""} take ~${gib(weights)} but --gpu-memory-utilization ${u} × ${gib(mem)} × ${s.count} GPU(s) of pool "${pool.name}" reserves ${gib(reserved)}; ${remedies.join(", or ")}`,
  };
}

/**
 * Replicas that time-slicing may put on one GPU, whose reservations together exceed it. The
 * remedies are checked too: a smaller share per replica is only offered when the weights still fit it.
 */
function sharingProblem(
  pool: MemoryPool,
  mem: number | undefined,
  services: readonly MemoryService[],
): MemoryFitProblem | undefined {
  const slices = pool.gpu.sharing.timeSlicing?.replicas;
  if (!slices) return undefined;
  // Worst placement: the largest reservations together on one physical GPU.
  const shares = services
    .flatMap((s) => Array.from({ length: s.replicas * s.count }, () => ({ s, u: memoryUtilization(s.args) })))
    .sort((a, b) => b.u - a.u)
    .slice(0, slices);
  const total = shares.reduce((sum, x) => sum + x.u, 0);
  if (shares.length < 2 || fitsOneGpu(total)) return undefined;

  const involved = [...new Set(shares.map((x) => x.s))];
  const each = floor2(1 / shares.length);
  const tooBig =
    mem === undefined ? [] : involved.filter((s) => (weightsGiB(s.sizeB, s.quantization) ?? 0) >= each * mem);
  // The most replicas whose largest reservations still fit one GPU together.
  let fit = 0;
  let sum = 0;
  while (fit < shares.length && fitsOneGpu(sum + shares[fit]!.u)) sum += shares[fit++]!.u;
  const slicesKey = `${pool.key}.gpu.sharing.timeSlicing`;
  const remedies = [
    tooBig.length === 0
      ? `set --gpu-memory-utilization to at most ${each} in ${involved.map((s) => `${s.key}.args`).join(", ")}`
      : `a share of ${each} (${gib(each * mem!)}) would not hold the weights of ${tooBig.map((s) => `${s.name} (~${gib(weightsGiB(s.sizeB, s.quantization)!)})`).join(", ")}, so quantize (${tooBig.map((s) => `${s.key}.quantization`).join(", ")}) before sharing a GPU`,
    fit >= 2 ? `set ${slicesKey}.replicas to ${fit}` : `remove ${slicesKey} (whole GPUs: one replica each)`,
  ];
  const reserved = mem === undefined ? "" : ` (${gib(total * mem)} of ${gib(mem)})`;
  return {
    key: `${slicesKey}.replicas`,
    services: involved.map((s) => s.name),
    message: `pool "${pool.name}" time-slices each${mem === undefined ? "" : ` ${gib(mem)}`} GPU ${slices} ways without memory isolation: ${shares.length} replicas (${involved.map((s) => s.name).join(", ")}) can land on one GPU and reserve ${shares.map((x) => x.u).join(" + ")} = ${Math.round(total * 100)}% of it${reserved}; ${remedies.join(", or ")}`,
  };
}

/**
 * Problems (with the numbers and the keys to set) of the vLLM services on one pool; empty when
 * their memory fits. Weights are checked where the device memory is known; the shares of a
 * time-sliced GPU always are (they are fractions of it, whatever its size).
 */
export function memoryFitProblems(pool: MemoryPool, services: readonly MemoryService[]): MemoryFitProblem[] {
  const mem = deviceMemoryGiB(pool.gpu);
  const weights = mem === undefined ? [] : services.flatMap((s) => weightsProblem(pool, mem, s) ?? []);
  const sharing = sharingProblem(pool, mem, services);
  return sharing ? [...weights, sharing] : weights;
}
