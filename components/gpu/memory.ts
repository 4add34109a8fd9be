/**
 * GPU memory fit. Time-slicing shares a GPU's compute, not its memory: every replica on a physical
 * GPU keeps its own allocation, and vLLM reserves `--gpu-memory-utilization` (default 0.9) of the
 * whole GPU at start. Counting slices says two replicas fit one L4; counting memory says the second
 * one runs out. The scheduler picks any slice, so the check assumes the worst placement: as many
 * replicas as the GPU has slices (or as exist) on one GPU.
 */
import type { GpuSpec } from "../cluster/schema";

/** vLLM's default share of GPU memory per instance. */
export const VLLM_DEFAULT_MEMORY_UTILIZATION = 0.9;

/** Memory per GPU (GiB) of common products, when the pool does not say (`gpu.memoryGiB`). */
const KNOWN_MEMORY_GIB: readonly [RegExp, number][] = [
  [/\bL4\b/i, 24],
  [/\bT4\b/i, 16],
  [/\bA10G?\b/i, 24],
  [/\bL40S?\b/i, 48],
  [/\bA100.*40/i, 40],
  [/\bA100\b/i, 80],
  [/\bH100\b/i, 80],
  [/\bH200\b/i, 141],
];

export function gpuMemoryGiB(gpu: Pick<GpuSpec, "product"> & { memoryGiB?: number }): number | undefined {
  if (gpu.memoryGiB !== undefined) return gpu.memoryGiB;
  return KNOWN_MEMORY_GIB.find(([re]) => gpu.product && re.test(gpu.product))?.[1];
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

export interface MemoryService {
  readonly name: string;
  readonly args: readonly string[];
  readonly quantization?: string;
  /** Billions of parameters, when the model id tells. */
  readonly sizeB?: number;
  /** GPUs (slices) per replica (tensor parallel). */
  readonly count: number;
  /** Peak replicas. */
  readonly replicas: number;
}

const gib = (n: number) => `${Math.round(n * 10) / 10} GiB`;

/** Problems (with the numbers) of the services on one pool; empty when memory fits. */
export function memoryFitProblems(
  pool: { name: string; gpu: Pick<GpuSpec, "product" | "sharing"> & { memoryGiB?: number } },
  services: readonly MemoryService[],
): { service?: string; message: string }[] {
  const mem = gpuMemoryGiB(pool.gpu);
  if (mem === undefined) return [];
  const out: { service?: string; message: string }[] = [];
  for (const s of services) {
    const u = memoryUtilization(s.args);
    const weights =
      s.sizeB === undefined ? undefined : (s.sizeB * bytesPerParam(s.quantization) * 1e9) / 2 ** 30;
    const budget = u * mem * s.count;
    if (weights !== undefined && weights >= budget)
      out.push({
        service: s.name,
        message: `weights of ${s.sizeB}B parameters take ~${gib(weights)} but ${s.count} × ${u} × ${mem} GiB = ${gib(budget)} is reserved on pool "${pool.name}" (--gpu-memory-utilization ${u}); use quantization, more GPUs per replica or a bigger GPU`,
      });
  }
  const slices = pool.gpu.sharing.timeSlicing?.replicas;
  if (!slices) return out;
  // Worst placement: the largest reservations together on one physical GPU.
  const shares = services
    .flatMap((s) =>
      Array.from({ length: s.replicas * s.count }, () => ({ s: s.name, u: memoryUtilization(s.args) })),
    )
    .sort((a, b) => b.u - a.u)
    .slice(0, slices);
  const total = shares.reduce((sum, x) => sum + x.u, 0);
  if (shares.length > 1 && total > 1)
    out.push({
      message: `pool "${pool.name}" time-slices each ${mem} GiB GPU ${slices} ways without memory isolation: ${shares.length} replicas (${[...new Set(shares.map((x) => x.s))].join(", ")}) can land on one GPU and reserve ${shares.map((x) => x.u).join(" + ")} = ${Math.round(total * 100)}% of it (${gib(total * mem)} of ${mem} GiB); set --gpu-memory-utilization to at most ${Math.floor((1 / shares.length) * 100) / 100} per replica, or timeSlicing.replicas to ${Math.max(1, Math.floor(1 / (shares[0]?.u ?? 1)))} or fewer`,
    });
  return out;
}
