import type { ChipSpec } from './chips.js';
import type { KernelRun } from './pallas/interpreter.js';

/**
 * The cost of one op launched on the simulated chip: a Pallas kernel (from running it in the
 * interpreter) or an XLA glue op (pad, cast, slice, lane gather, add into y: bytes only).
 * Estimated time = max(MXU time, HBM time) + grid steps × per-step overhead: a roofline per op,
 * where an XLA op counts as one step (its launch).
 */
export interface OpCost {
  readonly op: string;
  readonly kind: 'pallas' | 'xla';
  readonly hbmBytes: number;
  /** MXU FLOPs as issued: padded blocks, masked-out rows and per-token repeats included. */
  readonly mxuFlops: number;
  readonly gridSteps: number;
  readonly stepsSkipped: number;
  readonly seconds: number;
  /**
   * True for glue that exists only because the public API is float32 `[S, T, R]` between shrink and
   * expand (casts, lane gather/scatter, the add into y): on a TPU the activations are bf16 and the
   * mirrored lanes of vLLM PR 15655 need no shuffle, so the ablation report leaves these out (`kernelMicros`).
   */
  readonly apiGlue: boolean;
}

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
  calls: number;
  launches: number;
  hbmBytes: number;
  mxuFlops: number;
  /** FLOPs the math needs: 2 · rank · features per token with an adapter, per slice. */
  usefulFlops: number;
  gridSteps: number;
  stepsSkipped: number;
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
