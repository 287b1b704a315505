import type { Tensor2D } from '@tensorflow/tfjs-core';
import type { AdapterModuleWeights } from '../adapters/adapter.js';
import { describeValue, LoRAError } from '../errors.js';
import { checkTensor } from '../validate.js';

/** What the adapter manager needs from a layer: which modules it serves and how to fill a slot. */
export interface LoRALayer {
  /** PEFT module name per slice, e.g. [`model.layers.0.self_attn.q_proj`, `…k_proj`, `…v_proj`]. */
  readonly modules: readonly string[];
  /**
   * Which adapter weights fit it: `linear` (lora_A / lora_B) or `embedding` (lora_embedding_A /
   * lora_embedding_B); an adapter module of the other kind is refused with E_SHAPE.
   */
  readonly kind: 'linear' | 'embedding';
  /** What an adapter module for slice i must look like: A `[r, inFeatures]`, B `[outFeatures, r]`. */
  readonly sliceShapes: readonly {
    /** H, the input width, for a linear layer; V, the vocabulary size, for an embedding. */
    readonly inFeatures: number;
    /** The slice's output width O_s for a linear layer; D, the embedding width, for an embedding. */
    readonly outFeatures: number;
  }[];
  /** Writes one adapter's modules (null = not targeted: zeros) into a slot, scale folded into B. */
  setSlot(slot: number, modules: readonly (AdapterModuleWeights | null)[]): void;
  /**
   * Throws what `setSlot` would throw for these modules, writing nothing. The manager checks every
   * layer before it writes any, so a refused activation leaves no slot half-written.
   */
  validateSlot?(modules: readonly (AdapterModuleWeights | null)[]): void;
  /** Bytes of this layer's slot stacks (host mirror and device copy), counted against `maxSlotMemory`. */
  readonly slotBytes?: number;
  /**
   * Zeros a slot's A and B in every slice, so tokens mapped to it get no LoRA term from this layer.
   * @throws {@link LoRAError} `E_INDEX` when `slot` is not an integer in `[0, maxLoras)`.
   */
  resetLoRA(slot: number): void;
  /** Removes the layer from its runtime's adapter manager and frees its slot stacks; base weights stay the caller's. */
  dispose(): void;
}

/**
 * A matrix given to `setLoRA`: a row-major Float32Array (its row count inferred from its length
 * where the layer does not fix it) or a float32 `Tensor2D`, read back to the host once.
 */
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
  const t = checkTensor(value, name, `[${rows ?? 'r'}, ${cols}]`);
  const shape = t.shape;
  if (shape[1] !== cols || (rows !== undefined && shape[0] !== rows)) {
    throw new LoRAError('E_SHAPE', `${name} must be [${rows ?? 'r'}, ${cols}], got ${describeValue(value)}`);
  }
  return { data: t.dataSync() as Float32Array, rows: shape[0] as number };
}

export function checkSlot(slot: number, maxLoras: number): void {
  if (!Number.isInteger(slot) || slot < 0 || slot >= maxLoras) {
    throw new LoRAError('E_INDEX', `slot ${describeValue(slot)} is outside [0, ${maxLoras}) (maxLoras = ${maxLoras})`);
  }
}

/** A forward's input rows must match the batch that `setBatch` / `updateMetadata` described. */
export function checkTokenCount(rows: number, expected: number, layer: string): void {
  if (rows !== expected) {
    throw new LoRAError(
      'E_INDEX',
      `${layer}: the input has ${rows} rows but the current batch has ${expected}; call adapters.setBatch() (or punica.updateMetadata()) for this batch first`,
    );
  }
}

/** Layers refuse work once their runtime is disposed, before touching their (freed) stacks. */
export function checkLive(runtime: { readonly punica: { readonly isDisposed: boolean } }, what: string): void {
  if (runtime.punica.isDisposed)
    throw new LoRAError('E_DISPOSED', `${what}: the LoRA runtime was disposed; create a new one with createLoRA()`);
}
