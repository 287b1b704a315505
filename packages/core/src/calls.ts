import type { Tensor2D, Tensor3D } from '@tensorflow/tfjs-core';
import type { LoRAMapping } from './metadata.js';

/**
 * The one shape of a shrink or expand call, from `PunicaWrapper` down to a backend's kernel: named
 * fields instead of positions, and the sizes computed once, by core, from the shapes it validated.
 * A kernel reads `dims` instead of re-deriving them from tensor shapes.
 */

/** Sizes of a shrink: x `[tokens, hidden]`, each of `slices` A stacks `[slots, rank, hidden]`, out `[slices, tokens, rank]`. */
export interface ShrinkDims {
  /** T: rows of x, equal to the mapping's `numTokens`. */
  readonly tokens: number;
  /** H: columns of x and the last axis of every A stack. */
  readonly hidden: number;
  /** R: the rank axis of the A stacks (a layer's stacks are zero-padded to `maxLoraRank`). */
  readonly rank: number;
  /** L: slots per stack, equal to `maxLoras`. */
  readonly slots: number;
  /** S: number of A stacks (3 for a packed q/k/v layer), the leading axis of the output. */
  readonly slices: number;
}

/** Sizes of an expand: y `[tokens, width]`, x `[slices, tokens, rank]`, B stack s `[slots, outputSlices[s], rank]`. */
export interface ExpandDims {
  /** T: rows of y and the middle axis of x, equal to the mapping's `numTokens`. */
  readonly tokens: number;
  /** Columns of y; the slices write `Σ outputSlices` of them, from `offsetStart`. */
  readonly width: number;
  /** R: the last axis of x and of every B stack. */
  readonly rank: number;
  /** L: slots per stack, equal to `maxLoras`. */
  readonly slots: number;
  /** S: number of B stacks, equal to x's leading axis and to `outputSlices.length`. */
  readonly slices: number;
}

/** `[S, T, R]` = `scale · A_s[slot(t)] · x[t]`, zeros for tokens without an adapter. */
export interface ShrinkCall {
  /** Activations `[T, H]`, float32. */
  readonly x: Tensor2D;
  /** One A stack `[L, R, H]` per slice, all with the same R and H. */
  readonly loraA: readonly Tensor3D[];
  /** The batch's token→slot mapping the kernel follows (`tokenLoraIndices`, or `segments` for SGMV). */
  readonly meta: LoRAMapping;
  /** Finite factor on every product (layers pass 1: their scale is folded into B). */
  readonly scale: number;
  /**
   * Each slot's true rank (one per slot, at most the stacks' R), or undefined for R: rows of A and
   * columns of B past it are zero padding, which kernels that declare `skipsPaddedRanks` do not read.
   */
  readonly slotRanks: Int32Array | undefined;
  /** The sizes, read off the shapes core validated. */
  readonly dims: ShrinkDims;
}

/**
 * The rank a kernel reads slot `slot` up to: the call's `slotRanks` entry (core validated it to lie
 * in `[0, maxLoraRank]`) capped at the stacks' `rank`, or `rank` itself when the call has no
 * `slotRanks`. Rows of A and columns of B past it are padding that `skipsPaddedRanks` kernels skip.
 */
export function slotRank(slotRanks: Int32Array | undefined, slot: number, rank: number): number {
  return slotRanks === undefined ? rank : Math.min(rank, slotRanks[slot] as number);
}

/**
 * How the slots of a B stack `[L, O_s, R]` hold their rows (docs/contract.md, "B layouts"):
 * - `'padded'` (vLLM's `lora_b_stacked`): slot l is `[O_s, R]`, its columns past the slot's rank zero.
 * - `'slot-rank'`: slot l's `[O_s, K_l]`, K_l = `slotRanks[l]`, fills the first `O_s·K_l` values of
 *   its `O_s·R`; the rest is never read. A rank-8 adapter in `maxLoraRank` 32 stacks is then 32
 *   contiguous bytes per output row instead of 32 useful bytes every 128, a quarter of the cache
 *   lines. Only for backends that declare `readsSlotRankB`, and only in calls that pass `slotRanks`.
 */
export type BLayout = 'padded' | 'slot-rank';

/** The row stride a kernel reads slot `slot` of a B stack with: the slot's rank in the 'slot-rank' layout, else the stacks' R. */
export function bRowStride(layout: BLayout, slotRanks: Int32Array | undefined, slot: number, rank: number): number {
  return layout === 'slot-rank' ? slotRank(slotRanks, slot, rank) : rank;
}

/** `y` with slice s of `B_s[slot(t)] · x[s, t]` written (or added) from column `offsetStart + Σ_{j<s} outputSlices[j]`. */
export interface ExpandCall {
  /** The base output `[T, width]`; never modified: the kernel returns a new tensor. */
  readonly y: Tensor2D;
  /** The shrink result `[S, T, R]`. */
  readonly x: Tensor3D;
  /** One B stack `[L, O_s, R]` per slice. */
  readonly loraB: readonly Tensor3D[];
  /** The batch's token→slot mapping; rows of tokens without an adapter are returned as y has them. */
  readonly meta: LoRAMapping;
  /** Width O_s of each slice, in column order; `offsetStart + Σ O_s ≤ width`. */
  readonly outputSlices: readonly number[];
  /** First column of y that slice 0 writes (0 unless the caller asked otherwise). */
  readonly offsetStart: number;
  /** True: add the product to y's values; false: overwrite the columns the slices cover. */
  readonly addInputs: boolean;
  /**
   * Each slot's true rank (one per slot, at most the stacks' R), or undefined for R: rows of A and
   * columns of B past it are zero padding, which kernels that declare `skipsPaddedRanks` do not read.
   */
  readonly slotRanks: Int32Array | undefined;
  /** How the B stacks' slots hold their rows ({@link BLayout}); 'slot-rank' only with `slotRanks`. */
  readonly bLayout: BLayout;
  /** The sizes, read off the shapes core validated. */
  readonly dims: ExpandDims;
}

/** Sizes of a fused shrink + expand: the shrink's, plus the width of y. */
export interface LinearDims extends ShrinkDims {
  /** Columns of y: `Σ outputSlices`, every one written from column 0. */
  readonly width: number;
}

/** `y + B_s[slot(t)] · (scale · A_s[slot(t)] · x[t])` per slice s, side by side in y's columns: shrink and expand in one call. */
export interface LinearCall {
  /** The base output `[T, width]`; never modified: the kernel returns a new tensor. */
  readonly y: Tensor2D;
  /** Activations `[T, H]`, float32. */
  readonly x: Tensor2D;
  /** One A stack `[L, R, H]` per slice. */
  readonly loraA: readonly Tensor3D[];
  /** One B stack `[L, O_s, R]` per slice. */
  readonly loraB: readonly Tensor3D[];
  /** The batch's token→slot mapping; rows of tokens without an adapter are returned as y has them. */
  readonly meta: LoRAMapping;
  /** Finite factor on every product (layers pass 1: their scale is folded into B). */
  readonly scale: number;
  /** Width O_s of each slice, in column order; they add up to `dims.width`. */
  readonly outputSlices: readonly number[];
  /**
   * Each slot's true rank (one per slot, at most the stacks' R), or undefined for R: rows of A and
   * columns of B past it are zero padding, which kernels that declare `skipsPaddedRanks` do not read.
   */
  readonly slotRanks: Int32Array | undefined;
  /** How the B stacks' slots hold their rows ({@link BLayout}); 'slot-rank' only with `slotRanks`. */
  readonly bLayout: BLayout;
  /** The sizes, read off the shapes core validated. */
  readonly dims: LinearDims;
}

/** A shrink call with its dims read off shapes core has already checked (`validate.ts`). */
export function shrinkCall(
  x: Tensor2D,
  loraA: readonly Tensor3D[],
  meta: LoRAMapping,
  scale: number,
  slotRanks: Int32Array | undefined = undefined,
): ShrinkCall {
  const [slots, rank, hidden] = (loraA[0] as Tensor3D).shape;
  return { x, loraA, meta, scale, slotRanks, dims: { tokens: x.shape[0], hidden, rank, slots, slices: loraA.length } };
}

/** An expand call with its dims read off shapes core has already checked (`validate.ts`). */
export function expandCall(
  y: Tensor2D,
  x: Tensor3D,
  loraB: readonly Tensor3D[],
  meta: LoRAMapping,
  outputSlices: readonly number[],
  options: { offsetStart?: number; addInputs?: boolean; slotRanks?: Int32Array | undefined; bLayout?: BLayout } = {},
): ExpandCall {
  const [tokens, width] = y.shape;
  const { offsetStart = 0, addInputs = true, slotRanks, bLayout = 'padded' } = options;
  const dims = { tokens, width, rank: x.shape[2], slots: (loraB[0] as Tensor3D).shape[0], slices: loraB.length };
  return { y, x, loraB, meta, outputSlices, offsetStart, addInputs, slotRanks, bLayout, dims };
}

/** A fused shrink + expand call (see {@link LinearCall}) with its dims read off shapes core has already checked. */
export function linearCall(
  y: Tensor2D,
  x: Tensor2D,
  loraA: readonly Tensor3D[],
  loraB: readonly Tensor3D[],
  meta: LoRAMapping,
  scale: number,
  outputSlices: readonly number[],
  slotRanks: Int32Array | undefined,
  bLayout: BLayout = 'padded',
): LinearCall {
  const [slots, rank, hidden] = (loraA[0] as Tensor3D).shape;
  const dims = { tokens: x.shape[0], hidden, rank, slots, slices: loraA.length, width: y.shape[1] };
  return { y, x, loraA, loraB, meta, scale, outputSlices, slotRanks, bLayout, dims };
}
