import type { LoRAMapping } from '@lora/core';

/**
 * Expand on typed arrays: for each LoRA token t and slice s, columns
 * `[offsetStart + Σ_{j<s} O_j, … + O_s)` of `out` get `B_s[slot] · x[s, t]` added (out already holds
 * y, or zeros there when addInputs is false).
 *
 * Loop order that won here (shared/PERF_NOTES.md, 2.5× over a generic loop): per (slice, segment),
 * tile O by 256 so the B tile (256 × R floats) stays in L1 across the segment's tokens; tokens
 * inside; the token's shrink values in locals with the rank loop unrolled. Ranks are taken in
 * chunks of 16, 8, 4 and 1 so that any R gets unrolled code; each chunk adds its partial sum.
 */
export interface ExpandArgs {
  /** `[T, W]`: a copy of y, written in place. */
  out: Float32Array;
  /** `[S, T, R]` shrink output. */
  x: Float32Array;
  /** One `[L, O_s, R]` stack per slice. */
  loraB: readonly Float32Array[];
  width: number;
  rank: number;
  outputSlices: readonly number[];
  offsetStart: number;
  addInputs: boolean;
  meta: LoRAMapping;
}

const O_TILE = 256;

type ChunkKernel = (out: Float32Array, outRow: number, b: Float32Array, bRow: number, R: number, o0: number, o1: number, v: Float32Array, vi: number) => void;

const CHUNKS: ReadonlyArray<readonly [number, ChunkKernel]> = [
  [16, chunk16],
  [8, chunk8],
  [4, chunk4],
  [1, chunk1],
];

export function expandSegments(args: ExpandArgs): void {
  const { out, x, loraB, width: W, rank: R, outputSlices, offsetStart, addInputs, meta } = args;
  const T = meta.numTokens;
  const order = meta.singleLoRA ? null : meta.sortedTokenIndices;
  let col0 = offsetStart;
  for (let s = 0; s < loraB.length; s++) {
    const O = outputSlices[s] as number;
    const b = loraB[s] as Float32Array;
    const xBase = s * T * R;
    for (const { slot, start, length } of meta.segments) {
      const end = start + length;
      if (!addInputs) {
        for (let i = start; i < end; i++) {
          const row = (order === null ? i : (order[i] as number)) * W + col0;
          out.fill(0, row, row + O);
        }
      }
      const bSlot = slot * O * R;
      for (let o0 = 0; o0 < O; o0 += O_TILE) {
        const o1 = Math.min(O, o0 + O_TILE);
        let r = 0;
        for (const [size, kernel] of CHUNKS) {
          for (; r + size <= R; r += size) {
            for (let i = start; i < end; i++) {
              const t = order === null ? i : (order[i] as number);
              kernel(out, t * W + col0, b, bSlot + r, R, o0, o1, x, xBase + t * R + r);
            }
          }
        }
      }
    }
    col0 += O;
  }
}

function chunk16(out: Float32Array, outRow: number, b: Float32Array, bRow: number, R: number, o0: number, o1: number, v: Float32Array, vi: number): void {
  const v0 = v[vi] as number, v1 = v[vi + 1] as number, v2 = v[vi + 2] as number, v3 = v[vi + 3] as number;
  const v4 = v[vi + 4] as number, v5 = v[vi + 5] as number, v6 = v[vi + 6] as number, v7 = v[vi + 7] as number;
  const v8 = v[vi + 8] as number, v9 = v[vi + 9] as number, v10 = v[vi + 10] as number, v11 = v[vi + 11] as number;
  const v12 = v[vi + 12] as number, v13 = v[vi + 13] as number, v14 = v[vi + 14] as number, v15 = v[vi + 15] as number;
  for (let o = o0; o < o1; o++) {
    const k = bRow + o * R;
    const sum =
      (b[k] as number) * v0 + (b[k + 1] as number) * v1 + (b[k + 2] as number) * v2 + (b[k + 3] as number) * v3 +
      (b[k + 4] as number) * v4 + (b[k + 5] as number) * v5 + (b[k + 6] as number) * v6 + (b[k + 7] as number) * v7 +
      (b[k + 8] as number) * v8 + (b[k + 9] as number) * v9 + (b[k + 10] as number) * v10 + (b[k + 11] as number) * v11 +
      (b[k + 12] as number) * v12 + (b[k + 13] as number) * v13 + (b[k + 14] as number) * v14 + (b[k + 15] as number) * v15;
    out[outRow + o] = (out[outRow + o] as number) + sum;
  }
}

function chunk8(out: Float32Array, outRow: number, b: Float32Array, bRow: number, R: number, o0: number, o1: number, v: Float32Array, vi: number): void {
  const v0 = v[vi] as number, v1 = v[vi + 1] as number, v2 = v[vi + 2] as number, v3 = v[vi + 3] as number;
  const v4 = v[vi + 4] as number, v5 = v[vi + 5] as number, v6 = v[vi + 6] as number, v7 = v[vi + 7] as number;
  for (let o = o0; o < o1; o++) {
    const k = bRow + o * R;
    const sum =
      (b[k] as number) * v0 + (b[k + 1] as number) * v1 + (b[k + 2] as number) * v2 + (b[k + 3] as number) * v3 +
      (b[k + 4] as number) * v4 + (b[k + 5] as number) * v5 + (b[k + 6] as number) * v6 + (b[k + 7] as number) * v7;
    out[outRow + o] = (out[outRow + o] as number) + sum;
  }
}

function chunk4(out: Float32Array, outRow: number, b: Float32Array, bRow: number, R: number, o0: number, o1: number, v: Float32Array, vi: number): void {
  const v0 = v[vi] as number, v1 = v[vi + 1] as number, v2 = v[vi + 2] as number, v3 = v[vi + 3] as number;
  for (let o = o0; o < o1; o++) {
    const k = bRow + o * R;
    const sum = (b[k] as number) * v0 + (b[k + 1] as number) * v1 + (b[k + 2] as number) * v2 + (b[k + 3] as number) * v3;
    out[outRow + o] = (out[outRow + o] as number) + sum;
  }
}

function chunk1(out: Float32Array, outRow: number, b: Float32Array, bRow: number, R: number, o0: number, o1: number, v: Float32Array, vi: number): void {
  const v0 = v[vi] as number;
  for (let o = o0; o < o1; o++) out[outRow + o] = (out[outRow + o] as number) + (b[bRow + o * R] as number) * v0;
}
