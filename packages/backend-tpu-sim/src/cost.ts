import type { ChipSpec } from './chips.js';
import type { KernelRun } from './pallas/interpreter.js';

/**
 * The cost of one op launched on the simulated chip: a Pallas kernel (from running it in the
 * interpreter) or an XLA glue op (pad, cast, slice, lane gather, add into y: bytes only).
 * Estimated time = max(MXU time, HBM time) + grid steps × per-step overhead: a roofline per op,
 * where an XLA op counts as one step (its launch).
 */
export interface OpCost {
  /** The kernel's name or a description of the XLA op (e.g. 'cast and pad x to bf16', 'add into y'). */
  readonly op: string;
  /** 'pallas': a kernel run in the interpreter; 'xla': an XLA op, which includes the einsum variant's one-hot contraction. */
  readonly kind: 'pallas' | 'xla';
  /** HBM bytes the op reads and writes. */
  readonly hbmBytes: number;
  /** MXU FLOPs as issued: padded blocks, masked-out rows and per-token repeats included. */
  readonly mxuFlops: number;
  /** Grid steps charged the per-step overhead: the kernel's grid size, 1 for an XLA op. */
  readonly gridSteps: number;
  /** Grid steps that issued no matmul (block skipping); 0 for an XLA op. */
  readonly stepsSkipped: number;
  /** Estimated time: max(MXU time, HBM time) + grid steps × per-step overhead. */
  readonly seconds: number;
  /**
   * True for glue that exists only because the public API is float32 `[S, T, R]` between shrink and
   * expand (casts, lane gather/scatter, the add into y): on a TPU the activations are bf16 and the
   * mirrored lanes of vLLM PR 15655 need no shuffle, so the ablation report leaves these out (`kernelMicros`).
   */
  readonly apiGlue: boolean;
}

/**
 * The per-op roofline: the slower of MXU time at the chip's peak bf16 rate and HBM time at its
 * bandwidth, plus a fixed overhead per grid step.
 * @param stepOverheadSeconds - cost of one grid step, seconds
 * @param flops - MXU FLOPs issued
 * @param bytes - HBM bytes moved
 * @param steps - grid steps (1 for an XLA op)
 * @returns estimated seconds
 */
export function estimateSeconds(chip: ChipSpec, stepOverheadSeconds: number, flops: number, bytes: number, steps: number): number {
  return Math.max(flops / chip.peakBf16Flops, bytes / chip.hbmBytesPerSecond) + steps * stepOverheadSeconds;
}

export function kernelCost(run: KernelRun, chip: ChipSpec, overhead: number): OpCost {
  return {
    op: run.name,
    kind: 'pallas',
    hbmBytes: run.hbmBytes,
    mxuFlops: run.mxuFlops,
    gridSteps: run.gridSteps,
    stepsSkipped: run.stepsSkipped,
    seconds: estimateSeconds(chip, overhead, run.mxuFlops, run.hbmBytes, run.gridSteps),
    apiGlue: false,
  };
}

export function xlaCost(op: string, hbmBytes: number, chip: ChipSpec, overhead: number, apiGlue: boolean): OpCost {
  return {
    op,
    kind: 'xla',
    hbmBytes,
    mxuFlops: 0,
    gridSteps: 1,
    stepsSkipped: 0,
    seconds: estimateSeconds(chip, overhead, 0, hbmBytes, 1),
    apiGlue,
  };
}

/** Running totals over every op since the backend was created (what `stats()` reports). */
export interface CostTotals {
  /** Shrink and expand calls. */
  calls: number;
  /** Ops launched (kernels and XLA ops); one call launches several. */
  launches: number;
  /** HBM bytes moved by every op. */
  hbmBytes: number;
  /** MXU FLOPs issued, padding and masked-out work included (compare with `usefulFlops`). */
  mxuFlops: number;
  /** FLOPs the math needs: 2 · rank · features per token with an adapter, per slice. */
  usefulFlops: number;
  /** Grid steps over every op (an XLA op counts one). */
  gridSteps: number;
  /** Grid steps that issued no matmul (block skipping). */
  stepsSkipped: number;
  /** Estimated time of every op, float32-API glue included, µs. */
  estimatedMicros: number;
  /** Estimated time without the float32-API glue ops: what vLLM PR 15655's TPU pipeline would run. */
  kernelMicros: number;
}

export const emptyTotals = (): CostTotals => ({
  calls: 0,
  launches: 0,
  hbmBytes: 0,
  mxuFlops: 0,
  usefulFlops: 0,
  gridSteps: 0,
  stepsSkipped: 0,
  estimatedMicros: 0,
  kernelMicros: 0,
});

export function addOp(totals: CostTotals, op: OpCost): void {
  totals.launches++;
  totals.hbmBytes += op.hbmBytes;
  totals.mxuFlops += op.mxuFlops;
  totals.gridSteps += op.gridSteps;
  totals.stepsSkipped += op.stepsSkipped;
  totals.estimatedMicros += op.seconds * 1e6;
  if (!op.apiGlue) totals.kernelMicros += op.seconds * 1e6;
}
