import type { Tensor2D, Tensor3D } from '@tensorflow/tfjs-core';
import type { LoRAMapping } from './metadata.js';

/**
 * The one shape of a shrink or expand call, from `PunicaWrapper` down to a backend's kernel: named
 * fields instead of positions, and the sizes computed once, by core, from the shapes it validated.
 * A kernel reads `dims` instead of re-deriving them from tensor shapes.
 */

/** Sizes of a shrink: x `[tokens, hidden]`, each of `slices` A stacks `[slots, rank, hidden]`, out `[slices, tokens, rank]`. */
export interface ShrinkDims {
  readonly tokens: number;
  readonly hidden: number;
  readonly rank: number;
  readonly slots: number;
  readonly slices: number;
}

/** Sizes of an expand: y `[tokens, width]`, x `[slices, tokens, rank]`, B stack s `[slots, outputSlices[s], rank]`. */
export interface ExpandDims {
  readonly tokens: number;
  readonly width: number;
  readonly rank: number;
  readonly slots: number;
  readonly slices: number;
}

/** `[S, T, R]` = `scale · A_s[slot(t)] · x[t]`, zeros for tokens without an adapter. */
export interface ShrinkCall {
  readonly x: Tensor2D;
  readonly loraA: readonly Tensor3D[];
  readonly meta: LoRAMapping;
  readonly scale: number;
  readonly dims: ShrinkDims;
}

/** `y` with slice s of `B_s[slot(t)] · x[s, t]` written (or added) from column `offsetStart + Σ_{j<s} outputSlices[j]`. */
export interface ExpandCall {
  readonly y: Tensor2D;
  readonly x: Tensor3D;
  readonly loraB: readonly Tensor3D[];
  readonly meta: LoRAMapping;
  readonly outputSlices: readonly number[];
  readonly offsetStart: number;
  readonly addInputs: boolean;
  readonly dims: ExpandDims;
}

/** A shrink call with its dims read off shapes core has already checked (`validate.ts`). */
export function shrinkCall(x: Tensor2D, loraA: readonly Tensor3D[], meta: LoRAMapping, scale: number): ShrinkCall {
  const [slots, rank, hidden] = (loraA[0] as Tensor3D).shape;
  return { x, loraA, meta, scale, dims: { tokens: x.shape[0], hidden, rank, slots, slices: loraA.length } };
}

/** An expand call with its dims read off shapes core has already checked (`validate.ts`). */
export function expandCall(
  y: Tensor2D,
  x: Tensor3D,
  loraB: readonly Tensor3D[],
  meta: LoRAMapping,
  outputSlices: readonly number[],
  options: { offsetStart?: number; addInputs?: boolean } = {},
): ExpandCall {
  const [tokens, width] = y.shape;
  const { offsetStart = 0, addInputs = true } = options;
  const dims = { tokens, width, rank: x.shape[2], slots: (loraB[0] as Tensor3D).shape[0], slices: loraB.length };
  return { y, x, loraB, meta, outputSlices, offsetStart, addInputs, dims };
}
