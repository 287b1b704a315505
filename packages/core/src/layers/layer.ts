import type { Tensor2D } from '@tensorflow/tfjs-core';
import type { AdapterModuleWeights } from '../adapters/adapter.js';
import { describeValue, LoRAError } from '../errors.js';

/** What the adapter manager needs from a layer: which modules it serves and how to fill a slot. */
export interface LoRALayer {
  /** PEFT module name per slice, e.g. [`model.layers.0.self_attn.q_proj`, `…k_proj`, `…v_proj`]. */
  readonly modules: readonly string[];
  readonly kind: 'linear' | 'embedding';
  /** What an adapter module for slice i must look like: A `[r, inFeatures]`, B `[outFeatures, r]`. */
  readonly sliceShapes: readonly { readonly inFeatures: number; readonly outFeatures: number }[];
  /** Writes one adapter's modules (null = not targeted: zeros) into a slot, scale folded into B. */
  setSlot(slot: number, modules: readonly (AdapterModuleWeights | null)[]): void;
  resetLoRA(slot: number): void;
  dispose(): void;
}

export type MatrixInput = Float32Array | Tensor2D;

/** Host values of a user-supplied matrix with its shape checked: `[rows, cols]`, rows = the rank. */
export function readMatrix(value: MatrixInput, name: string, rows: number | undefined, cols: number): { data: Float32Array; rows: number } {
  if (value instanceof Float32Array) {
    const r = rows ?? value.length / cols;
    if (!Number.isInteger(r) || value.length !== r * cols) {
      throw new LoRAError('E_SHAPE', `${name} has ${value.length} values; expected [${rows ?? 'r'}, ${cols}]`);
    }
    return { data: value, rows: r };
  }
  const shape = (value as Tensor2D | undefined)?.shape;
  if (!Array.isArray(shape) || shape.length !== 2 || shape[1] !== cols || (rows !== undefined && shape[0] !== rows)) {
    throw new LoRAError('E_SHAPE', `${name} must be [${rows ?? 'r'}, ${cols}], got ${describeValue(value)}`);
  }
  return { data: (value as Tensor2D).dataSync() as Float32Array, rows: shape[0] };
}

export function checkSlot(slot: number, maxLoras: number): void {
  if (!Number.isInteger(slot) || slot < 0 || slot >= maxLoras) {
    throw new LoRAError('E_INDEX', `slot ${describeValue(slot)} is outside [0, ${maxLoras}) (maxLoras = ${maxLoras})`);
  }
}

export function checkLayerRank(rank: number, maxLoraRank: number, name: string): void {
  if (rank < 1 || rank > maxLoraRank) {
    throw new LoRAError('E_RANK', `${name} has rank ${rank}; this runtime takes ranks 1 to maxLoraRank = ${maxLoraRank}`);
  }
}
