import { keep, type Tensor3D, tensor3d } from '@tensorflow/tfjs-core';

/**
 * One stacked `[L, d1, d2]` weight with a host mirror. Writing a slot touches only the mirror; the
 * tensor is rebuilt (one upload) the next time a forward asks for it, so activating several
 * adapters before a batch costs one upload per stack, not one per adapter.
 */
export class WeightStack {
  readonly host: Float32Array;
  readonly shape: readonly [number, number, number];
  #tensor: Tensor3D | null = null;

  constructor(shape: readonly [number, number, number]) {
    this.shape = shape;
    this.host = new Float32Array(shape[0] * shape[1] * shape[2]);
  }

  /** The slot's `[d1, d2]` block, zeroed, for the caller to fill. Invalidates the tensor. */
  slot(slot: number): Float32Array {
    const size = this.shape[1] * this.shape[2];
    const view = this.host.subarray(slot * size, (slot + 1) * size);
    view.fill(0);
    this.#invalidate();
    return view;
  }

  get tensor(): Tensor3D {
    // keep(): the stack outlives any tf.tidy the forward pass runs in. A copy: tfjs may keep the
    // array it was given as the tensor's data (cpu) or as a pending upload (webgl), and later slot
    // writes must not reach a tensor someone still holds.
    this.#tensor ??= keep(tensor3d(this.host.slice(), this.shape as [number, number, number]));
    return this.#tensor;
  }

  #invalidate(): void {
    this.#tensor?.dispose();
    this.#tensor = null;
  }

  dispose(): void {
    this.#invalidate();
  }
}

/** Bytes a stack of this shape takes: its host mirror plus the device copy made from it. */
export function stackBytes(shape: readonly [number, number, number]): number {
  return 2 * 4 * shape[0] * shape[1] * shape[2];
}

/** Copies a PEFT lora_B `[out, r]` into a slot block `[out, R]` (rank zero-padded), times `scale`. */
export function writeB(block: Float32Array, b: Float32Array, out: number, rank: number, paddedRank: number, scale: number): void {
  for (let o = 0; o < out; o++) {
    for (let k = 0; k < rank; k++) block[o * paddedRank + k] = scale * (b[o * rank + k] as number);
  }
}
