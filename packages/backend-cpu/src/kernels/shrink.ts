// biome-ignore-all format: register-blocked kernels read best as grids, one row per token

import type { LoRAMapping } from '@lora/core';
import { slotRank } from '@lora/core/backend';

/**
 * The operands of one shrink over row-major float32 buffers, for {@link shrinkSegments} and for the
 * wasm SIMD driver. Buffers are typed arrays here, byte offsets into the wasm heap for the SIMD
 * kernels (`Buf = number`). Sizes are not re-checked: core validated them against the tensors.
 */
export interface ShrinkArgs<Buf = Float32Array> {
  /** `[S, T, R]`, zero-filled by the caller (tokens without LoRA stay zero). */
  out: Buf;
  /** `[T, H]` */
  x: Buf;
  /** One `[L, R, H]` stack per slice. */
  loraA: readonly Buf[];
  /** H: features per token, the row length of `x` and of every A row. Any H ≥ 1 works, no padding. */
  hidden: number;
  /** R: the LoRA rank, rows per adapter in each A stack and the innermost dimension of `out`. */
  rank: number;
  /**
   * Which token uses which slot: tokens are visited segment by segment (`meta.segments`, in
   * `meta.sortedTokenIndices` order, or `0..T-1` when `meta.singleLoRA`); T is `meta.numTokens`.
   */
  meta: LoRAMapping;
  /** Multiplies every output (the `scale` of the shrink call). */
  scale: number;
  /**
   * Each slot's true rank (`ShrinkCall.slotRanks`), undefined for R: a slot is read only up to it,
   * its padded rows never (they stay zero in the output).
   */
  slotRanks?: Int32Array | undefined;
}

/**
 * Shrink on typed arrays: `out[s, t, r] = scale · Σ_h A_s[slot, r, h] · x[t, h]` for every token t
 * of a segment; rows of tokens without LoRA are not written (they keep the caller's zeros).
 *
 * SGMV order: one pass per (slice, segment), so A rows of one slot are reused by all of its tokens.
 * Inside a segment the work is register-blocked 4 tokens × 4 rank rows (16 accumulators over H):
 * every loaded x or A element feeds four multiply-adds. This order measured ~3.4× faster than one
 * dot product per (token, row) here (docs/perf-notes.md). Remainders of T and R take the 4×1,
 * 1×4 and 1×1 variants, so any H, R and segment length work without padding. Every path sums in
 * h order, so a token's result does not depend on where its segment's blocks fall.
 */
export function shrinkSegments({ out, x, loraA, hidden: H, rank: R, meta, scale, slotRanks }: ShrinkArgs): void {
  const T = meta.numTokens;
  // Single adapter: tokens are 0..T-1 in order, no index lookups.
  const order = meta.singleLoRA ? null : meta.sortedTokenIndices;
  for (let s = 0; s < loraA.length; s++) {
    const a = loraA[s] as Float32Array;
    const outBase = s * T * R;
    for (const { slot, start, length } of meta.segments) {
      const aSlot = slot * R * H;
      // Rows past the slot's true rank are zero padding: they stay zero in out (caller-filled).
      const K = slotRank(slotRanks, slot, R);
      const end = start + length;
      let i = start;
      for (; i + 4 <= end; i += 4) {
        const t0 = order === null ? i : (order[i] as number);
        const t1 = order === null ? i + 1 : (order[i + 1] as number);
        const t2 = order === null ? i + 2 : (order[i + 2] as number);
        const t3 = order === null ? i + 3 : (order[i + 3] as number);
        let r = 0;
        for (; r + 4 <= K; r += 4) block4x4(out, x, a, H, R, outBase, t0, t1, t2, t3, aSlot + r * H, r, scale);
        for (; r < K; r++) block4x1(out, x, a, H, R, outBase, t0, t1, t2, t3, aSlot + r * H, r, scale);
      }
      for (; i < end; i++) {
        const t = order === null ? i : (order[i] as number);
        let r = 0;
        for (; r + 4 <= K; r += 4) block1x4(out, x, a, H, outBase + t * R + r, t * H, aSlot + r * H, scale);
        for (; r < K; r++) out[outBase + t * R + r] = scale * dot(x, t * H, a, aSlot + r * H, H);
      }
    }
  }
}

function block4x4(
  out: Float32Array,
  x: Float32Array,
  a: Float32Array,
  H: number,
  R: number,
  outBase: number,
  t0: number,
  t1: number,
  t2: number,
  t3: number,
  aRow: number,
  r: number,
  scale: number,
): void {
  const x0 = t0 * H;
  const x1 = t1 * H;
  const x2 = t2 * H;
  const x3 = t3 * H;
  const a0 = aRow;
  const a1 = aRow + H;
  const a2 = aRow + 2 * H;
  const a3 = aRow + 3 * H;
  let c00 = 0, c01 = 0, c02 = 0, c03 = 0;
  let c10 = 0, c11 = 0, c12 = 0, c13 = 0;
  let c20 = 0, c21 = 0, c22 = 0, c23 = 0;
  let c30 = 0, c31 = 0, c32 = 0, c33 = 0;
  for (let h = 0; h < H; h++) {
    const w0 = a[a0 + h] as number;
    const w1 = a[a1 + h] as number;
    const w2 = a[a2 + h] as number;
    const w3 = a[a3 + h] as number;
    const v0 = x[x0 + h] as number;
    const v1 = x[x1 + h] as number;
    const v2 = x[x2 + h] as number;
    const v3 = x[x3 + h] as number;
    c00 += v0 * w0; c01 += v0 * w1; c02 += v0 * w2; c03 += v0 * w3;
    c10 += v1 * w0; c11 += v1 * w1; c12 += v1 * w2; c13 += v1 * w3;
    c20 += v2 * w0; c21 += v2 * w1; c22 += v2 * w2; c23 += v2 * w3;
    c30 += v3 * w0; c31 += v3 * w1; c32 += v3 * w2; c33 += v3 * w3;
  }
  let o = outBase + t0 * R + r;
  out[o] = scale * c00; out[o + 1] = scale * c01; out[o + 2] = scale * c02; out[o + 3] = scale * c03;
  o = outBase + t1 * R + r;
  out[o] = scale * c10; out[o + 1] = scale * c11; out[o + 2] = scale * c12; out[o + 3] = scale * c13;
  o = outBase + t2 * R + r;
  out[o] = scale * c20; out[o + 1] = scale * c21; out[o + 2] = scale * c22; out[o + 3] = scale * c23;
  o = outBase + t3 * R + r;
  out[o] = scale * c30; out[o + 1] = scale * c31; out[o + 2] = scale * c32; out[o + 3] = scale * c33;
}

/** Four tokens, one rank row (the R % 4 remainder). */
function block4x1(
  out: Float32Array,
  x: Float32Array,
  a: Float32Array,
  H: number,
  R: number,
  outBase: number,
  t0: number,
  t1: number,
  t2: number,
  t3: number,
  aRow: number,
  r: number,
  scale: number,
): void {
  const x0 = t0 * H;
  const x1 = t1 * H;
  const x2 = t2 * H;
  const x3 = t3 * H;
  let c0 = 0, c1 = 0, c2 = 0, c3 = 0;
  for (let h = 0; h < H; h++) {
    const w = a[aRow + h] as number;
    c0 += (x[x0 + h] as number) * w;
    c1 += (x[x1 + h] as number) * w;
    c2 += (x[x2 + h] as number) * w;
    c3 += (x[x3 + h] as number) * w;
  }
  out[outBase + t0 * R + r] = scale * c0;
  out[outBase + t1 * R + r] = scale * c1;
  out[outBase + t2 * R + r] = scale * c2;
  out[outBase + t3 * R + r] = scale * c3;
}

/** One token, four rank rows (the segment-length % 4 remainder). */
function block1x4(out: Float32Array, x: Float32Array, a: Float32Array, H: number, o: number, xRow: number, aRow: number, scale: number): void {
  const a1 = aRow + H;
  const a2 = aRow + 2 * H;
  const a3 = aRow + 3 * H;
  let c0 = 0, c1 = 0, c2 = 0, c3 = 0;
  for (let h = 0; h < H; h++) {
    const v = x[xRow + h] as number;
    c0 += v * (a[aRow + h] as number);
    c1 += v * (a[a1 + h] as number);
    c2 += v * (a[a2 + h] as number);
    c3 += v * (a[a3 + h] as number);
  }
  out[o] = scale * c0;
  out[o + 1] = scale * c1;
  out[o + 2] = scale * c2;
  out[o + 3] = scale * c3;
}

/**
 * One (token, row) dot product, summed in h order like the blocked paths: a token's result must not
 * depend on whether its segment put it in a 4-token block or the remainder (batch invariance).
 */
function dot(x: Float32Array, xRow: number, a: Float32Array, aRow: number, H: number): number {
  let c = 0;
  for (let h = 0; h < H; h++) c += (x[xRow + h] as number) * (a[aRow + h] as number);
  return c;
}
