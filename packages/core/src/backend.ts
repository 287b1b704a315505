import type { Tensor, Tensor2D, Tensor3D } from '@tensorflow/tfjs-core';
import type { ExpandCall, LinearCall, ShrinkCall } from './calls.js';

/**
 * Counters a backend reports through `stats()`, for tests, benchmarks and leak checks: numbers
 * only, under the names below or its own (`kernelCalls`, `simd`, …).
 */
export interface LoRABackendStats {
  /** GPU programs / simulated TPU programs compiled so far (0 for backends that compile nothing). */
  programsCompiled: number;
  /** Tensors the backend holds on purpose between calls (e.g. a batch's uploaded index) and their bytes. */
  tensorsHeld?: number;
  /** Bytes of the tensors counted in `tensorsHeld`. */
  bytesHeld?: number;
  [counter: string]: number | undefined;
}

/**
 * What a backend package implements. Core has already validated every argument (shapes, ranks,
 * slot range, token count) before it calls `shrink` or `expand`, so a backend holds only kernels.
 */
export interface LoRABackend {
  /** 'cpu' | 'webgl' | 'webgpu' | 'tpu-sim' or a third-party name. */
  readonly name: string;
  /** The tfjs backend its kernels are registered for and compute on. */
  readonly tfBackend: string;
  /**
   * How layers should keep base weights for the fastest matmul on this backend: 'out-in' (torch's
   * `[O, H]`, `x·Wᵀ`, the default) or 'in-out' (`[H, O]`, `x·W`: tfjs-wasm's XNNPACK path).
   */
  readonly weightLayout?: 'out-in' | 'in-out';
  /**
   * True when a tensor made from a host array copies the values into the backend's own memory
   * before `tf.tensor` returns (tfjs-wasm's heap), so the caller may overwrite the array at once:
   * a model build can then prepare every weight in one reused buffer. Absent or false: the backend
   * may keep the array itself (tfjs `cpu` adopts it; `webgl` uploads it later).
   */
  readonly copiesHostArrays?: boolean;
  /**
   * Tensors live in host memory (tfjs `cpu`, `wasm`): reading values back costs no device stall,
   * so core checks data-dependent inputs (embedding token ids) on the host. Absent or false: core
   * does not read them (a GPU would stall; its gather reads a zero row for an id out of range).
   */
  readonly hostMemory?: boolean;
  /**
   * Compiles a program per static shape (GPU shaders, simulated TPU programs) and counts them in
   * `stats().programsCompiled`; core's token buckets keep the count bounded however batches vary.
   */
  readonly compilesPrograms?: boolean;
  /**
   * The most tokens one batch may hold on this backend once `init()` has run, where a device limit
   * sets one (WebGPU: a grid dimension of at most `maxComputeWorkgroupsPerDimension` workgroups);
   * undefined for no limit. `createLoRA` refuses a `maxNumTokens` above it with E_CONFIG instead of
   * letting the first large batch fail inside the device.
   */
  maxBatchTokens?(): number | undefined;
  /**
   * Its shrink kernel multiplies row t of the result by `call.meta.tokenScales[t]` (per-request
   * strength) itself. Absent or false: core multiplies the shrink result by the strengths with one
   * tfjs op, in batches that have any strength other than 1.
   */
  readonly appliesTokenScales?: boolean;
  /**
   * Its kernels read a slot only up to the slot's true rank (the call's `slotRanks`, which the
   * layers pass): a rank-8 adapter in a runtime of `maxLoraRank` 32 costs rank 8, and
   * whatever the padded rows hold is never read. Absent or false: kernels multiply the whole padded
   * rank (correct, since padding is zero, but at the padded cost).
   */
  readonly skipsPaddedRanks?: boolean;
  /**
   * Its expand kernels read B stacks in the 'slot-rank' layout (`BLayout`: each slot's rows at its own
   * rank) when a call says so; the layers then write their B stacks that way. Absent or false: calls
   * with that layout are refused (E_UNSUPPORTED) and every stack is 'padded'.
   */
  readonly readsSlotRankB?: boolean;
  /**
   * The accuracy it promises: max error per output row relative to the root-sum-square of the
   * row's products (README "Accuracy"). Default 1e-4 (float32 arithmetic); tpu-sim, which rounds
   * LoRA operands to bfloat16, promises 3e-2. Callers that compare against float64 read it here
   * instead of testing a backend's name.
   */
  readonly accuracy?: number;
  /**
   * Optional: writes `values` into `tensor`'s own memory from flat element `offset` on, in place, and
   * returns true; false when it cannot (the caller then makes a new tensor). Layers use it to put an
   * activated adapter into its slot of a stack without uploading the whole stack again, the way vLLM
   * copies an adapter into its slot of the stacked weights. Only stacks the layers own are written.
   */
  overwrite?(tensor: Tensor, offset: number, values: Float32Array): boolean;
  /** Registers the tfjs backend and kernels, selects devices. Safe to call more than once. */
  init(): Promise<void>;
  /** `[S, T, R]`: `scale · A_s[slot(t)] · x[t]`, zeros for tokens without an adapter. */
  shrink(call: ShrinkCall): Tensor3D;
  /** `y` with slice s of `B_s[slot(t)] · x[s, t]` written (or added) at its column offset. */
  expand(call: ExpandCall): Tensor2D;
  /**
   * Optional: `y + scale · B·(A·x)` for every LoRA token in one kernel (shrink and expand fused: no
   * `[S, T, R]` tensor between them, one dispatch), with the rows' strengths applied when
   * `appliesTokenScales`. `addLoRALinear` and `addLoRALogits` use it where it exists.
   */
  linear?(call: LinearCall): Tensor2D;
  /** Its counters since it was created (see {@link LoRABackendStats}). */
  stats?(): LoRABackendStats;
  /** Frees what the backend holds; called once by the runtime's `dispose()`, or when `init()` failed. */
  dispose(): void;
}

/** Builds a backend from `LoRAConfig.backendOptions`. */
export type LoRABackendFactory = (options: Readonly<Record<string, unknown>>) => LoRABackend | Promise<LoRABackend>;
