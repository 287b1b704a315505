import type { ExpandArgs } from '../kernels/expand.js';
import type { ShrinkArgs } from '../kernels/shrink.js';
import type { SimdKernels } from './module.js';

/**
 * Walks the SGMV segments and hands the SIMD kernels row pointers: 4-token blocks for shrink,
 * 2-token blocks for expand, O tiled by 256 so a slot's B tile stays in L1 across the tokens.
 * Pointers are byte offsets into the tfjs-backend-wasm heap; nothing is copied in or out.
 */

const F32 = 4;
const O_TILE = 256;

export function shrinkOnHeap(k: SimdKernels, a: ShrinkArgs<number>): void {
  const { out, x, hidden: H, rank: R, meta, scale } = a;
  const T = meta.numTokens;
  k.fill0(out, a.loraA.length * T * R * F32); // tokens without LoRA stay zero
  const order = meta.singleLoRA ? null : meta.sortedTokenIndices;
  const token = (i: number): number => (order === null ? i : (order[i] as number));
  const outRow = (s: number, t: number) => out + (s * T + t) * R * F32;
  const xRow = (t: number) => x + t * H * F32;
  a.loraA.forEach((stack, s) => {
    for (const { slot, start, length } of meta.segments) {
      const aSlot = stack + slot * R * H * F32;
      const end = start + length;
      let i = start;
      for (; i + 4 <= end; i += 4) {
        const [t0, t1, t2, t3] = [token(i), token(i + 1), token(i + 2), token(i + 3)];
        k.shrink4(outRow(s, t0), outRow(s, t1), outRow(s, t2), outRow(s, t3), xRow(t0), xRow(t1), xRow(t2), xRow(t3), aSlot, H, R, scale);
      }
      for (; i < end; i++) k.shrink1(outRow(s, token(i)), xRow(token(i)), aSlot, H, R, scale);
    }
  });
}

export type HeapExpandArgs = ExpandArgs<number> & {
  /** `[T, W]` input, read by the kernel. */
  y: number;
};

export function expandOnHeap(k: SimdKernels, a: HeapExpandArgs): void {
  const { y, out, x, width: W, rank: R, outputSlices, offsetStart, addInputs, meta } = a;
  const T = meta.numTokens;
  const end = offsetStart + outputSlices.reduce((n, o) => n + o, 0);
  // Copy only what no LoRA term writes; written columns read y inside the kernel (one pass).
  for (let t = 0; t < T; t++) {
    const row = t * W * F32;
    if ((meta.tokenLoraIndices[t] as number) < 0) k.copy(out + row, y + row, W * F32);
    else {
      if (offsetStart > 0) k.copy(out + row, y + row, offsetStart * F32);
      if (end < W) k.copy(out + row + end * F32, y + row + end * F32, (W - end) * F32);
    }
  }
  const add = addInputs ? 1 : 0;
  const order = meta.singleLoRA ? null : meta.sortedTokenIndices;
  const token = (i: number): number => (order === null ? i : (order[i] as number));
  let col0 = offsetStart;
  a.loraB.forEach((stack, s) => {
    const O = outputSlices[s] as number;
    const at = (t: number) => (t * W + col0) * F32;
    const v = (t: number) => x + (s * T + t) * R * F32;
    for (const { slot, start, length } of meta.segments) {
      const last = start + length;
      const bSlot = stack + slot * O * R * F32;
      for (let o0 = 0; o0 < O; o0 += O_TILE) {
        const o1 = Math.min(O, o0 + O_TILE);
        let i = start;
        for (; i + 4 <= last; i += 4) {
          const [t0, t1, t2, t3] = [token(i), token(i + 1), token(i + 2), token(i + 3)];
          k.expand4(
            out + at(t0),
            out + at(t1),
            out + at(t2),
            out + at(t3),
            y + at(t0),
            y + at(t1),
            y + at(t2),
            y + at(t3),
            add,
            bSlot,
            R,
            o0,
            o1,
            v(t0),
            v(t1),
            v(t2),
            v(t3),
          );
        }
        for (; i + 2 <= last; i += 2) {
          const [t0, t1] = [token(i), token(i + 1)];
          k.expand2(out + at(t0), out + at(t1), y + at(t0), y + at(t1), add, bSlot, R, o0, o1, v(t0), v(t1));
        }
        if (i < last) k.expand1(out + at(token(i)), y + at(token(i)), add, bSlot, R, o0, o1, v(token(i)));
      }
    }
    col0 += O;
  });
}
