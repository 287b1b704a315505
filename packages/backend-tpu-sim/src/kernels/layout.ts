import { roundBf16Array } from '../bf16.js';
import { type HbmArray, hbmArray } from '../pallas/arrays.js';
import type { Lanes } from './plan.js';

/**
 * Host-side layouts (what vLLM PR 15655 does once, when an adapter is loaded or a batch is prepared):
 * bf16 rounding, zero padding, the extra zero slot that -1 tokens are routed to, lane packing and
 * pre-transposition. Plain typed-array copies; nothing here is charged as kernel work.
 */

/**
 * `[L, rows, cols]` → bf16 `[L + 1, rowsPad, colsPad]` (slot L is the zero slot), or its
 * per-slot transpose `[L + 1, colsPad, rowsPad]`.
 */
export function padStack(
  stack: Float32Array,
  slots: number,
  rows: number,
  cols: number,
  rowsPad: number,
  colsPad: number,
  transpose: boolean,
): HbmArray {
  const bf = roundBf16Array(stack);
  const [d1, d2] = transpose ? [colsPad, rowsPad] : [rowsPad, colsPad];
  const out = hbmArray([slots + 1, d1, d2], 'bf16', [slots, transpose ? cols : rows, transpose ? rows : cols]);
  const o = out.data;
  for (let n = 0; n < slots; n++) {
    for (let r = 0; r < rows; r++) {
      const src = (n * rows + r) * cols;
      if (transpose) {
        for (let c = 0; c < cols; c++) o[(n * d1 + c) * d2 + r] = bf[src + c] as number;
      } else {
        o.set(bf.subarray(src, src + cols), (n * d1 + r) * d2);
      }
    }
  }
  return out;
}

/**
 * Shrink weights `[L, r, H]` packed into lanes: `[G, width, Hpad]`, adapter n = g·lanes + p in
 * rows `[p·rank, p·rank + r)` of group g. The shrink output then holds each token's result in its
 * adapter's lane of its group's tile.
 */
export function packLanesOut(stack: Float32Array, slots: number, rank: number, hidden: number, lanes: Lanes, hiddenPad: number): HbmArray {
  const bf = roundBf16Array(stack);
  const out = hbmArray([lanes.groups, lanes.width, hiddenPad], 'bf16', [lanes.groups, lanes.width, hidden]);
  for (let n = 0; n < slots; n++) {
    const g = Math.floor(n / lanes.lanes);
    const p = n % lanes.lanes;
    for (let r = 0; r < rank; r++) {
      const src = (n * rank + r) * hidden;
      out.data.set(bf.subarray(src, src + hidden), (g * lanes.width + p * lanes.rank + r) * hiddenPad);
    }
  }
  return out;
}

/**
 * Expand weights `[L, O, r]` in the mirrored packing: lane rows of group g hold adapter
 * g·lanes + p's `Bᵀ` (`[G, width, Opad]`, 'nn') or B itself along columns (`[G, Opad, width]`, 'nt'),
 * so the laned shrink output multiplies them with no shuffle in between.
 */
export function packLanesIn(
  stack: Float32Array,
  slots: number,
  out: number,
  rank: number,
  lanes: Lanes,
  outPad: number,
  layout: 'nn' | 'nt',
): HbmArray {
  const bf = roundBf16Array(stack);
  const shape = layout === 'nn' ? [lanes.groups, lanes.width, outPad] : [lanes.groups, outPad, lanes.width];
  const extent = layout === 'nn' ? [lanes.groups, lanes.width, out] : [lanes.groups, out, lanes.width];
  const w = hbmArray(shape, 'bf16', extent);
  for (let n = 0; n < slots; n++) {
    const g = Math.floor(n / lanes.lanes);
    const lane = (n % lanes.lanes) * lanes.rank;
    for (let o = 0; o < out; o++) {
      for (let r = 0; r < rank; r++) {
        const v = bf[(n * out + o) * rank + r] as number;
        if (layout === 'nn') w.data[(g * lanes.width + lane + r) * outPad + o] = v;
        else w.data[(g * outPad + o) * lanes.width + lane + r] = v;
      }
    }
  }
  return w;
}

/** Slot per padded token, -1 and padding routed to the zero slot `slots` (uploaded whole, never sliced). */
export function routeTokens(tokenLoraIndices: Int32Array, padded: number, slots: number): Int32Array {
  const idx = new Int32Array(padded).fill(slots);
  for (let t = 0; t < tokenLoraIndices.length; t++) {
    const s = tokenLoraIndices[t] as number;
    if (s >= 0) idx[t] = s;
  }
  return idx;
}

/** `[T, K]` float32 rows → bf16 `[Tpad, Kpad]` (columns from `colOffset` of a `[T, stride]` source). */
export function padRows(src: Float32Array, rows: number, cols: number, stride: number, rowsPad: number, colsPad: number): HbmArray {
  const out = hbmArray([rowsPad, colsPad], 'bf16', [rows, cols]);
  for (let t = 0; t < rows; t++) out.data.set(src.subarray(t * stride, t * stride + cols), t * colsPad);
  roundBf16Array(out.data, out.data);
  return out;
}

/** A token's `[r]` input to a laned expand placed in its adapter's lane of its group (`single`: one group). */
export function scatterLanes(
  src: Float32Array,
  tokenLoraIndices: Int32Array,
  rank: number,
  lanes: Lanes,
  rowsPad: number,
  single: boolean,
): HbmArray {
  const width = single ? lanes.width : lanes.groups * lanes.width;
  const out = hbmArray([rowsPad, width], 'bf16', [tokenLoraIndices.length, width]);
  for (let t = 0; t < tokenLoraIndices.length; t++) {
    const n = tokenLoraIndices[t] as number;
    if (n < 0) continue;
    const g = single ? 0 : Math.floor(n / lanes.lanes);
    const col = g * lanes.width + (n % lanes.lanes) * lanes.rank;
    out.data.set(src.subarray(t * rank, (t + 1) * rank), t * width + col);
  }
  roundBf16Array(out.data, out.data);
  return out;
}
