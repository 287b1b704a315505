import { describeValue, LoRAError } from '@lora/core';
import type { ModelConfig } from './config.js';
import { checkpointTensors, elements, type TensorSpec } from './modules.js';

/** A checkpoint's tensors as float32, by their Hugging Face names (`model.layers.0.mlp.up_proj.weight`). */
export type WeightMap = ReadonlyMap<string, Float32Array>;

/**
 * Hands the model its weights one tensor (or one packed group) at a time, checking each against
 * the shape the config implies. With `release`, a tensor leaves the map as soon as it is taken, so
 * that a loader's float32 copy can be collected once the model holds it: the q/k/v and gate/up
 * packing then costs one layer's group at a time, not a second copy of the model.
 */
export class WeightTaker {
  readonly #weights: WeightMap;
  readonly #release: boolean;
  readonly #shapes: ReadonlyMap<string, readonly number[]>;

  /** The transposes' output when it may be reused (see `transposed`); grown to the largest weight. */
  #scratch: Float32Array | undefined;
  readonly #reuseScratch: boolean;

  /**
   * `reuseScratch`: the backend copies host arrays when it makes a tensor (`copiesHostArrays`), so
   * every `transposed` of this build may write into one buffer instead of a fresh array per weight
   * (the first touch of fresh memory costs as much as the transpose itself).
   */
  constructor(config: ModelConfig, weights: WeightMap, release: boolean, reuseScratch = false) {
    this.#reuseScratch = reuseScratch;
    if (!(weights instanceof Map)) {
      throw new LoRAError('E_CONFIG', `weights must be a Map of tensor name → Float32Array, got ${describeValue(weights)}`);
    }
    this.#weights = weights;
    this.#release = release;
    this.#shapes = new Map(checkpointTensors(config).map((t: TensorSpec) => [t.name, t.shape]));
  }

  /** The tensor's values, checked: present, a Float32Array, exactly as many values as its shape. */
  take(name: string): Float32Array {
    const shape = this.#shapes.get(name);
    if (shape === undefined) throw new LoRAError('E_CONFIG', `${name} is not a weight of this model configuration`);
    const data = this.#weights.get(name);
    if (!(data instanceof Float32Array)) {
      throw new LoRAError(
        'E_SHAPE',
        `weights has no Float32Array for ${name} (expected shape [${shape.join(', ')}]), got ${describeValue(data)}`,
      );
    }
    if (data.length !== elements(shape)) {
      throw new LoRAError('E_SHAPE', `${name} has ${data.length} values; its shape [${shape.join(', ')}] needs ${elements(shape)}`);
    }
    if (this.#release) (this.#weights as Map<string, Float32Array>).delete(name);
    return data;
  }

  /**
   * Several tensors' rows stacked into one array (packed q/k/v, gate/up), in the order given; one
   * tensor as it is. Parts that already lie back to back in one buffer (the loader decodes each
   * packed group that way) are taken as that buffer's span: no copy.
   */
  pack(names: readonly string[]): Float32Array {
    if (names.length === 1) return this.take(names[0] as string);
    const parts = names.map((n) => this.take(n));
    const span = contiguous(parts);
    if (span !== undefined) return span;
    const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  /**
   * `data` `[rows, cols]` as `[cols, rows]` (see `transposeInto`), for a tensor made at once: with
   * `reuseScratch` the array is overwritten by the next call.
   */
  transposed(data: Float32Array, rows: number, cols: number): Float32Array {
    const n = rows * cols;
    let out: Float32Array;
    if (this.#reuseScratch) {
      if (this.#scratch === undefined || this.#scratch.length < n) this.#scratch = new Float32Array(n);
      out = this.#scratch.subarray(0, n);
    } else out = new Float32Array(n);
    transposeInto(data, rows, cols, out);
    return out;
  }
}

/**
 * `[rows, cols]` row-major → `[cols, rows]` into `out`, in 64×64 blocks so both sides stay in cache, four
 * source rows at a time so each write of `out` fills four neighbouring floats (1.2–2.3× the
 * one-row loop here, measured over the Llama shapes of the load bench). The CPU backend multiplies
 * `x·W` with W `[in, out]` (XNNPACK's layout): a weight transposed here goes to the device once,
 * instead of an `[out, in]` copy plus a transposed copy made there.
 */
export function transposeInto(data: Float32Array, rows: number, cols: number, out: Float32Array): void {
  const B = 64;
  for (let r0 = 0; r0 < rows; r0 += B) {
    const r1 = Math.min(rows, r0 + B);
    for (let c0 = 0; c0 < cols; c0 += B) {
      const c1 = Math.min(cols, c0 + B);
      let r = r0;
      for (; r + 4 <= r1; r += 4) {
        const a = r * cols;
        const b = a + cols;
        const c = b + cols;
        const d = c + cols;
        for (let j = c0; j < c1; j++) {
          const o = j * rows + r;
          out[o] = data[a + j] as number;
          out[o + 1] = data[b + j] as number;
          out[o + 2] = data[c + j] as number;
          out[o + 3] = data[d + j] as number;
        }
      }
      for (; r < r1; r++) {
        const row = r * cols;
        for (let j = c0; j < c1; j++) out[j * rows + r] = data[row + j] as number;
      }
    }
  }
}

/** The one array the parts make up when each starts where the previous one ends in the same buffer. */
function contiguous(parts: readonly Float32Array[]): Float32Array | undefined {
  const first = parts[0] as Float32Array;
  let end = first.byteOffset;
  for (const p of parts) {
    if (p.buffer !== first.buffer || p.byteOffset !== end) return undefined;
    end += p.byteLength;
  }
  return new Float32Array(first.buffer, first.byteOffset, (end - first.byteOffset) / Float32Array.BYTES_PER_ELEMENT);
}
