import { bRowStride, slotRank } from '@lora/core/backend';
import type { ExpandArgs } from '../kernels/expand.js';
import type { ShrinkArgs } from '../kernels/shrink.js';
import type { SimdKernels } from './module.js';

/**
 * Walks the SGMV segments and hands the SIMD kernels row pointers: 4-token blocks for shrink,
 * 2-token blocks for expand (a 4-token block's 16 accumulators spilled: see assembly/kernels.ts),
 * O tiled by 256 so a slot's B tile stays in L1 across the tokens. Pointers are byte offsets into the tfjs-backend-wasm heap; nothing is copied in or out.
 * Each slot is read up to its true rank (`slotRanks`): padded rows are never read.
 *
 * Plain loops and locals only: at decode (T = 1…8) this walk runs twice per layer and token step,
 * and closures or array destructuring here cost as much as the arithmetic (docs/perf-notes.md).
 */

const F32 = 4;
const O_TILE = 256;

export function shrinkOnHeap(k: SimdKernels, a: ShrinkArgs<number>): void {
  const { out, x, hidden: H, rank: R, meta, scale, loraA, slotRanks } = a;
  const T = meta.numTokens;
  k.fill0(out, loraA.length * T * R * F32); // tokens (and rank rows) without LoRA stay zero
  const order = meta.singleLoRA ? null : meta.sortedTokenIndices;
  const rowBytes = R * F32;
  const xBytes = H * F32;
  const segments = meta.segments;
  for (let s = 0; s < loraA.length; s++) {
    const stack = loraA[s] as number;
    const outS = out + s * T * rowBytes;
    for (let g = 0; g < segments.length; g++) {
      const { slot, start, length } = segments[g] as (typeof segments)[number];
      const K = slotRank(slotRanks, slot, R);
      const aSlot = stack + slot * R * xBytes;
      const end = start + length;
      let i = start;
      for (; i + 4 <= end; i += 4) {
        const t0 = order === null ? i : (order[i] as number);
        const t1 = order === null ? i + 1 : (order[i + 1] as number);
        const t2 = order === null ? i + 2 : (order[i + 2] as number);
        const t3 = order === null ? i + 3 : (order[i + 3] as number);
        k.shrink4(
          outS + t0 * rowBytes,
          outS + t1 * rowBytes,
          outS + t2 * rowBytes,
          outS + t3 * rowBytes,
          x + t0 * xBytes,
          x + t1 * xBytes,
          x + t2 * xBytes,
          x + t3 * xBytes,
          aSlot,
          H,
          K,
          scale,
        );
      }
      for (; i < end; i++) {
        const t = order === null ? i : (order[i] as number);
        k.shrink1(outS + t * rowBytes, x + t * xBytes, aSlot, H, K, scale);
      }
    }
  }
}

export type HeapExpandArgs = ExpandArgs<number> & {
  /** `[T, W]` input, read by the kernel. */
  y: number;
};

export function expandOnHeap(k: SimdKernels, a: HeapExpandArgs): void {
  const { y, out, x, width: W, rank: R, outputSlices, offsetStart, addInputs, meta, loraB, slotRanks, bLayout = 'padded' } = a;
  const T = meta.numTokens;
  let end = offsetStart;
  for (let s = 0; s < outputSlices.length; s++) end += outputSlices[s] as number;
  const rowBytes = W * F32;
  // Copy only what no LoRA term writes; written columns read y inside the kernel (one pass).
  for (let t = 0; t < T; t++) {
    const row = t * rowBytes;
    if ((meta.tokenLoraIndices[t] as number) < 0) k.copy(out + row, y + row, rowBytes);
    else {
      if (offsetStart > 0) k.copy(out + row, y + row, offsetStart * F32);
      if (end < W) k.copy(out + row + end * F32, y + row + end * F32, (W - end) * F32);
    }
  }
  const add = addInputs ? 1 : 0;
  const order = meta.singleLoRA ? null : meta.sortedTokenIndices;
  const segments = meta.segments;
  const vBytes = R * F32;
  let col0 = offsetStart * F32;
  for (let s = 0; s < loraB.length; s++) {
    const O = outputSlices[s] as number;
    const stack = loraB[s] as number;
    const xS = x + s * T * vBytes;
    for (let g = 0; g < segments.length; g++) {
      const { slot, start, length } = segments[g] as (typeof segments)[number];
      const K = slotRank(slotRanks, slot, R);
      const last = start + length;
      if (K === 0) {
        // An empty slot adds nothing: its tokens' columns are y's (or zero), exactly as the scalar
        // kernel leaves them, without the kernels' y + 0 (which turns a -0 into +0).
        for (let i = start; i < last; i++) {
          const c = (order === null ? i : (order[i] as number)) * rowBytes + col0;
          if (addInputs) k.copy(out + c, y + c, O * F32);
          else k.fill0(out + c, O * F32);
        }
        continue;
      }
      const bSlot = stack + slot * O * vBytes;
      const stride = bRowStride(bLayout, slotRanks, slot, R);
      for (let o0 = 0; o0 < O; o0 += O_TILE) {
        const o1 = Math.min(O, o0 + O_TILE);
        let i = start;
        for (; i + 2 <= last; i += 2) {
          const t0 = order === null ? i : (order[i] as number);
          const t1 = order === null ? i + 1 : (order[i + 1] as number);
          const c0 = t0 * rowBytes + col0;
          const c1 = t1 * rowBytes + col0;
          k.expand2(out + c0, out + c1, y + c0, y + c1, add, bSlot, stride, K, o0, o1, xS + t0 * vBytes, xS + t1 * vBytes);
        }
        if (i < last) {
          const t = order === null ? i : (order[i] as number);
          const c = t * rowBytes + col0;
          k.expand1(out + c, y + c, add, bSlot, stride, K, o0, o1, xS + t * vBytes);
        }
      }
    }
    col0 += O * F32;
  }
}
