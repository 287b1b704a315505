// biome-ignore-all format: register-blocked kernels read best as grids, one row per token

import type { LoRAMapping } from '@lora/core';
import { type BLayout, bRowStride, slotRank } from '@lora/core/backend';

/**
 * The operands of one expand over row-major float32 buffers, for {@link expandSegments} and for the
 * wasm SIMD driver. Buffers are typed arrays here, byte offsets into the wasm heap for the SIMD
 * kernels (`Buf = number`). Sizes are not re-checked: core validated them against the tensors.
 */
export interface ExpandArgs<Buf = Float32Array> {
  /** `[T, W]`: a copy of y, written in place (SIMD: freshly allocated; y is read in the kernel). */
  out: Buf;
  /** `[S, T, R]` shrink output. */
  x: Buf;
  /** One `[L, O_s, R]` stack per slice. */
  loraB: readonly Buf[];
  /** W: the row length of `out` (all of y's columns, not only the slices'). */
  width: number;
  /** R: the LoRA rank, the innermost dimension of `x` and of every B stack. */
  rank: number;
  /** O_s, the column count of each slice, one per `loraB` stack; slices sit side by side in `out`. */
  outputSlices: readonly number[];
  /** The column of `out` where slice 0 starts; `offsetStart + Σ O_s ≤ W`. */
  offsetStart: number;
  /** True: add the LoRA term to y's values. False: LoRA tokens' slice columns get the term alone. */
  addInputs: boolean;
  /** Each slot's true rank (`ExpandCall.slotRanks`), undefined for R: columns of B past it are not read. */
  slotRanks?: Int32Array | undefined;
  /** How B's slots hold their rows (`ExpandCall.bLayout`): row stride R ('padded', the default) or the slot's rank ('slot-rank'). */
  bLayout?: BLayout | undefined;
  /**
   * Which token uses which slot: tokens are visited segment by segment (`meta.segments`, in
   * `meta.sortedTokenIndices` order, or `0..T-1` when `meta.singleLoRA`); T is `meta.numTokens`.
   * Tokens without LoRA are not touched.
   */
  meta: LoRAMapping;
}

const O_TILE = 256;

/**
 * Expand on typed arrays: for each LoRA token t and slice s, columns
 * `[offsetStart + Σ_{j<s} O_j, … + O_s)` of `out` get `B_s[slot] · x[s, t]` added (out already holds
 * y; when addInputs is false those columns are zeroed first, so they get the term alone).
 *
 * Same structure as shrink: per (slice, segment), register-blocked 4 tokens × 4 rank columns, so one
 * row of 4 B values feeds 16 multiply-adds into 4 output rows (1.6× faster here than one token at a
 * time with its 16 shrink values unrolled). O is tiled by 256 so the B tile (256 × R floats) stays
 * in L1 while every token block of a long prefill segment passes over it. Remainders of the
 * segment length and of R take the 1×4, 4×1 and 1×1 variants: any O, R and segment length work.
 */
export function expandSegments(args: ExpandArgs): void {
  const { out, x, loraB, width: W, rank: R, outputSlices, offsetStart, addInputs, meta, slotRanks, bLayout = 'padded' } = args;
  const T = meta.numTokens;
  // Single adapter: tokens are 0..T-1 in order, no index lookups.
  const order = meta.singleLoRA ? null : meta.sortedTokenIndices;
  const token = (i: number): number => (order === null ? i : (order[i] as number));
  let col0 = offsetStart;
  for (let s = 0; s < loraB.length; s++) {
    const O = outputSlices[s] as number;
    const b = loraB[s] as Float32Array;
    const xBase = s * T * R;
    for (const { slot, start, length } of meta.segments) {
      // Columns of B past the slot's true rank are zero padding: not read.
      const K = slotRank(slotRanks, slot, R);
      const stride = bRowStride(bLayout, slotRanks, slot, R);
      const end = start + length;
      if (!addInputs) {
        for (let i = start; i < end; i++) out.fill(0, token(i) * W + col0, token(i) * W + col0 + O);
      }
      const bSlot = slot * O * R;
      for (let o0 = 0; o0 < O; o0 += O_TILE) {
        const o1 = Math.min(O, o0 + O_TILE);
        let i = start;
        for (; i + 4 <= end; i += 4) {
          const t0 = token(i);
          const t1 = token(i + 1);
          const t2 = token(i + 2);
          const t3 = token(i + 3);
          let r = 0;
          for (; r + 4 <= K; r += 4) {
            block4x4(out, b, bSlot + r, stride, o0, o1, x, t0 * W + col0, t1 * W + col0, t2 * W + col0, t3 * W + col0, xBase + t0 * R + r, xBase + t1 * R + r, xBase + t2 * R + r, xBase + t3 * R + r);
          }
          for (; r < K; r++) {
            block4x1(out, b, bSlot + r, stride, o0, o1, t0 * W + col0, t1 * W + col0, t2 * W + col0, t3 * W + col0, x[xBase + t0 * R + r] as number, x[xBase + t1 * R + r] as number, x[xBase + t2 * R + r] as number, x[xBase + t3 * R + r] as number);
          }
        }
        for (; i < end; i++) {
          const t = token(i);
          let r = 0;
          for (; r + 4 <= K; r += 4) block1x4(out, t * W + col0, b, bSlot + r, stride, o0, o1, x, xBase + t * R + r);
          for (; r < K; r++) block1x1(out, t * W + col0, b, bSlot + r, stride, o0, o1, x[xBase + t * R + r] as number);
        }
      }
    }
    col0 += O;
  }
}

function block4x4(
  out: Float32Array,
  b: Float32Array,
  bRow: number,
  R: number,
  o0: number,
  o1: number,
  x: Float32Array,
  r0: number,
  r1: number,
  r2: number,
  r3: number,
  k0: number,
  k1: number,
  k2: number,
  k3: number,
): void {
  const p0 = x[k0] as number, p1 = x[k0 + 1] as number, p2 = x[k0 + 2] as number, p3 = x[k0 + 3] as number;
  const q0 = x[k1] as number, q1 = x[k1 + 1] as number, q2 = x[k1 + 2] as number, q3 = x[k1 + 3] as number;
  const u0 = x[k2] as number, u1 = x[k2 + 1] as number, u2 = x[k2 + 2] as number, u3 = x[k2 + 3] as number;
  const w0 = x[k3] as number, w1 = x[k3 + 1] as number, w2 = x[k3 + 2] as number, w3 = x[k3 + 3] as number;
  let o = o0;
  let j = bRow + o0 * R;
  // Two outputs per iteration: half the loop overhead, and 8 independent sums in flight.
  for (; o + 2 <= o1; o += 2, j += 2 * R) {
    const b0 = b[j] as number, b1 = b[j + 1] as number, b2 = b[j + 2] as number, b3 = b[j + 3] as number;
    const jn = j + R;
    const c0 = b[jn] as number, c1 = b[jn + 1] as number, c2 = b[jn + 2] as number, c3 = b[jn + 3] as number;
    out[r0 + o] = (out[r0 + o] as number) + (b0 * p0 + b1 * p1 + (b2 * p2 + b3 * p3));
    out[r0 + o + 1] = (out[r0 + o + 1] as number) + (c0 * p0 + c1 * p1 + (c2 * p2 + c3 * p3));
    out[r1 + o] = (out[r1 + o] as number) + (b0 * q0 + b1 * q1 + (b2 * q2 + b3 * q3));
    out[r1 + o + 1] = (out[r1 + o + 1] as number) + (c0 * q0 + c1 * q1 + (c2 * q2 + c3 * q3));
    out[r2 + o] = (out[r2 + o] as number) + (b0 * u0 + b1 * u1 + (b2 * u2 + b3 * u3));
    out[r2 + o + 1] = (out[r2 + o + 1] as number) + (c0 * u0 + c1 * u1 + (c2 * u2 + c3 * u3));
    out[r3 + o] = (out[r3 + o] as number) + (b0 * w0 + b1 * w1 + (b2 * w2 + b3 * w3));
    out[r3 + o + 1] = (out[r3 + o + 1] as number) + (c0 * w0 + c1 * w1 + (c2 * w2 + c3 * w3));
  }
  if (o < o1) {
    const b0 = b[j] as number, b1 = b[j + 1] as number, b2 = b[j + 2] as number, b3 = b[j + 3] as number;
    out[r0 + o] = (out[r0 + o] as number) + (b0 * p0 + b1 * p1 + (b2 * p2 + b3 * p3));
    out[r1 + o] = (out[r1 + o] as number) + (b0 * q0 + b1 * q1 + (b2 * q2 + b3 * q3));
    out[r2 + o] = (out[r2 + o] as number) + (b0 * u0 + b1 * u1 + (b2 * u2 + b3 * u3));
    out[r3 + o] = (out[r3 + o] as number) + (b0 * w0 + b1 * w1 + (b2 * w2 + b3 * w3));
  }
}

/** Four tokens, one rank column (the R % 4 remainder). */
function block4x1(
  out: Float32Array,
  b: Float32Array,
  bRow: number,
  R: number,
  o0: number,
  o1: number,
  r0: number,
  r1: number,
  r2: number,
  r3: number,
  p: number,
  q: number,
  u: number,
  w: number,
): void {
  for (let o = o0; o < o1; o++) {
    const bv = b[bRow + o * R] as number;
    out[r0 + o] = (out[r0 + o] as number) + bv * p;
    out[r1 + o] = (out[r1 + o] as number) + bv * q;
    out[r2 + o] = (out[r2 + o] as number) + bv * u;
    out[r3 + o] = (out[r3 + o] as number) + bv * w;
  }
}

/** One token, four rank columns (the segment-length % 4 remainder). */
function block1x4(out: Float32Array, row: number, b: Float32Array, bRow: number, R: number, o0: number, o1: number, x: Float32Array, k: number): void {
  const p0 = x[k] as number, p1 = x[k + 1] as number, p2 = x[k + 2] as number, p3 = x[k + 3] as number;
  for (let o = o0; o < o1; o++) {
    const j = bRow + o * R;
    out[row + o] = (out[row + o] as number) + ((b[j] as number) * p0 + (b[j + 1] as number) * p1 + ((b[j + 2] as number) * p2 + (b[j + 3] as number) * p3));
  }
}

function block1x1(out: Float32Array, row: number, b: Float32Array, bRow: number, R: number, o0: number, o1: number, v: number): void {
  for (let o = o0; o < o1; o++) out[row + o] = (out[row + o] as number) + (b[bRow + o * R] as number) * v;
}
