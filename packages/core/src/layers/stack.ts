import { keep, type Tensor, type Tensor3D, tensor3d } from '@tensorflow/tfjs-core';

/** A backend's in-place write (`LoRABackend.overwrite`): false when it cannot, and the stack is made anew. */
export type Overwrite = (tensor: Tensor, offset: number, values: Float32Array) => boolean;

/**
 * For `LoRABackend.overwrite` implementations: `values` written from flat element `offset` on stay
 * inside `tensor`, a float32 tensor. Each backend checks it against the tensor's own size before
 * touching memory, so a wrong offset can never write past the tensor (it returns false instead).
 */
export function overwriteFits(tensor: Tensor, offset: number, values: Float32Array): boolean {
  return tensor.dtype === 'float32' && Number.isSafeInteger(offset) && offset >= 0 && offset + values.length <= tensor.size;
}

/**
 * One stacked `[L, d1, d2]` weight with a host mirror. Writing a slot touches only the mirror; the
 * next forward that asks for the tensor gets the written slots. Where the backend writes tensors in
 * place (`overwrite`: the cpu backend), only those slots are copied into the live tensor (an
 * activation costs its own bytes, not the whole stack's); elsewhere the tensor is made anew from the
 * mirror, once for any number of slot writes before it.
 */
export class WeightStack {
  readonly host: Float32Array;
  readonly shape: readonly [number, number, number];
  readonly #overwrite: Overwrite | undefined;
  /** Slots written since the tensor was last brought up to date (only while it lives and can be overwritten). */
  readonly #dirty = new Set<number>();
  #tensor: Tensor3D | null = null;

  constructor(shape: readonly [number, number, number], overwrite?: Overwrite) {
    this.shape = shape;
    this.host = new Float32Array(shape[0] * shape[1] * shape[2]);
    this.#overwrite = overwrite;
  }

  /** The slot's `[d1, d2]` block, zeroed, for the caller to fill before the next read of `tensor`. */
  slot(slot: number): Float32Array {
    const size = this.#slotSize;
    const view = this.host.subarray(slot * size, (slot + 1) * size);
    view.fill(0);
    if (this.#overwrite === undefined) this.#invalidate();
    else if (this.#tensor !== null) this.#dirty.add(slot);
    return view;
  }

  /**
   * The stack the kernels read. Where the backend overwrites in place, it is the same tensor across
   * slot writes (a tensor read earlier sees later writes, as vLLM's stacked weights do); elsewhere a
   * new one after any write.
   */
  get tensor(): Tensor3D {
    if (this.#dirty.size > 0 && !this.#writeDirtySlots()) this.#invalidate();
    this.#dirty.clear();
    // keep(): the stack outlives any tf.tidy the forward pass runs in. A copy of the mirror: tfjs may
    // keep the array it was given as the tensor's data (cpu) or as a pending upload (webgl).
    this.#tensor ??= keep(tensor3d(this.host.slice(), this.shape as [number, number, number]));
    return this.#tensor;
  }

  get #slotSize(): number {
    return this.shape[1] * this.shape[2];
  }

  /** Copies the written slots into the live tensor; false when that is not possible (the tensor is then made anew). */
  #writeDirtySlots(): boolean {
    const t = this.#tensor;
    if (t === null || t.isDisposed || this.#overwrite === undefined) return false;
    const size = this.#slotSize;
    for (const slot of this.#dirty) {
      if (!this.#overwrite(t, slot * size, this.host.subarray(slot * size, (slot + 1) * size))) return false;
    }
    return true;
  }

  #invalidate(): void {
    this.#tensor?.dispose();
    this.#tensor = null;
  }

  dispose(): void {
    this.#dirty.clear();
    this.#invalidate();
  }
}

/** Bytes a stack of this shape takes: its host mirror plus the device copy made from it. */
export function stackBytes(shape: readonly [number, number, number]): number {
  return 2 * 4 * shape[0] * shape[1] * shape[2];
}

/**
 * Copies a PEFT lora_B `[out, r]` into a zeroed slot block as `[out, stride]` rows (columns past r
 * stay zero), times `scale`: stride R in the 'padded' layout, the slot's rank in 'slot-rank'.
 */
export function writeB(block: Float32Array, b: Float32Array, out: number, rank: number, stride: number, scale: number): void {
  for (let o = 0; o < out; o++) {
    for (let k = 0; k < rank; k++) block[o * stride + k] = scale * (b[o * rank + k] as number);
  }
}
