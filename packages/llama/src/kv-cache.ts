import type { LoRABackend } from '@lora/core';
import { concat, slice, type Tensor3D, tensor3d, transpose } from '@tensorflow/tfjs-core';

/** The backend's in-place write (`LoRABackend.overwrite`). */
export type KvWrite = NonNullable<LoRABackend['overwrite']>;

/**
 * Appending a step's keys or values to one layer's cache of one sequence, `[kv_heads, capacity, head_dim]`
 * with the sequence's first `length` positions in use (docs/perf-notes.md, "KV caches").
 *
 * Where the backend keeps tensors in host memory and writes them in place (`hostMemory` and
 * `overwrite`: the cpu backend), a cache is a buffer with room past `length`: a step writes only its
 * own rows into it, and the buffer is copied into a larger one when it is full (1/8 more positions,
 * at least 64, up to the context length) — a few copies of each position over a request instead of
 * one per generated token. Only buffers made here are written in place, and only while nobody else
 * holds their memory (a `tf.clone` shares it: the backend's `overwrite` then refuses, and the rows go
 * to a new buffer); a cache made elsewhere (a restored prefix, a benchmark's template) is copied into
 * one on its first append. Elsewhere (GPU backends, where the new rows are on the device) the cache
 * grows by `concat`, exactly `length` positions long.
 */

/** Buffers made by {@link appendInPlace}: the only caches it writes in place. */
const buffers = new WeakSet<Tensor3D>();

/** Positions a new buffer holds for `needed`: 1/8 more (at least 64), rounded up to 64, never past `maxPositions` nor below `needed`. */
export function kvCapacity(needed: number, maxPositions: number): number {
  const roomy = Math.ceil((needed + Math.max(64, Math.ceil(needed / 8))) / 64) * 64;
  return Math.max(needed, Math.min(roomy, maxPositions));
}

/** The step's new rows of one sequence, token-major on the host: position `length + t`, KV head h is `values[(start + t)·heads·hd + h·hd …]`. */
export interface HostRows {
  /** `[tokens of the step, kv_heads, head_dim]` (every sequence of the step; this one's rows from `start`). */
  readonly values: Float32Array;
  readonly start: number;
  readonly count: number;
}

/**
 * The cache with `rows` appended after its first `length` positions, written into `cache` itself
 * where it is a buffer made here with room and `write` takes it; otherwise a new buffer of
 * {@link kvCapacity} positions (the caller disposes the old cache when the result is another tensor).
 */
export function appendInPlace(
  cache: Tensor3D | undefined,
  length: number,
  rows: HostRows,
  shape: { heads: number; headDim: number; maxPositions: number },
  write: KvWrite,
): Tensor3D {
  const { heads, headDim: hd } = shape;
  const { values, start, count } = rows;
  const perHead = (h: number): Float32Array => {
    const block = new Float32Array(count * hd);
    for (let t = 0; t < count; t++) {
      const from = ((start + t) * heads + h) * hd;
      block.set(values.subarray(from, from + hd), t * hd);
    }
    return block;
  };
  if (cache !== undefined && buffers.has(cache) && !cache.isDisposed && cache.shape[1] >= length + count) {
    const capacity = cache.shape[1];
    let written = true;
    // A refusal part way leaves rows past `length` written, which nobody reads: the copy below starts over.
    for (let h = 0; h < heads && written; h++) written = write(cache, (h * capacity + length) * hd, perHead(h));
    if (written) return cache;
  }
  const capacity = kvCapacity(length + count, shape.maxPositions);
  const data = new Float32Array(heads * capacity * hd);
  const old = cache === undefined || length === 0 ? null : (cache.dataSync() as Float32Array);
  const oldCapacity = cache?.shape[1] ?? 0;
  for (let h = 0; h < heads; h++) {
    if (old !== null) data.set(old.subarray(h * oldCapacity * hd, (h * oldCapacity + length) * hd), h * capacity * hd);
    data.set(perHead(h), (h * capacity + length) * hd);
  }
  const next = tensor3d(data, [heads, capacity, hd]);
  buffers.add(next);
  return next;
}

/**
 * The cache's first `length` positions followed by `rows` (`[count, kv_heads, head_dim]`, token-major,
 * on the device), by `concat`: exactly `length + count` positions. A cache longer than `length`
 * (one restored with room) is cut to `length` first.
 */
export function appendByConcat(cache: Tensor3D | undefined, length: number, rows: Tensor3D): Tensor3D {
  const headMajor = transpose(rows, [1, 0, 2]) as Tensor3D;
  if (cache === undefined || length === 0) return headMajor;
  const [heads, capacity, hd] = cache.shape;
  const used = capacity === length ? cache : slice(cache, [0, 0, 0], [heads, length, hd]);
  return concat([used, headMajor], 1) as Tensor3D;
}
