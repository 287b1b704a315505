import { isVirtual } from './arrays.js';
import type { Block } from './interpreter.js';

/**
 * The MXU matmul of a kernel step: `acc[bT, bN] += X[bT, bK] · W[bN, bK]ᵀ` ('nt', weights stored
 * output-major like A `[N, r, H]`) or `X[bT, bK] · W[bK, bN]` ('nn', pre-transposed weights).
 *
 * Numerics: operands are bf16 values (exact in float32), every product is exact, and each add is
 * rounded to float32, continuing from the accumulator in increasing k. Because the order of adds
 * is the same whatever the block shapes, every kernel variant gives bit-identical results.
 *
 * A mask in Pallas multiplies the matmul result; the simulator instead computes only the rows (and
 * the column range per row, for lanes) the mask keeps, and skips data it knows is zero padding.
 * Those are the same numbers for finite weights. The caller charges the MXU for the full block.
 */
export interface MatmulArgs {
  /** f32 accumulator `[bT, bN]` (VMEM scratch). */
  readonly acc: Float32Array;
  /** `[T, K]` block. */
  readonly x: Block;
  /** `[G, N, K]` ('nt') or `[G, K, N]` ('nn') block; `lead` picks the slice within the block. */
  readonly w: Block;
  readonly lead: number;
  readonly layout: 'nt' | 'nn';
  /** Rows of the block to compute (all when omitted) and how many of `rows` are used. */
  readonly rows?: Int32Array;
  readonly rowCount?: number;
  /** Per selected row: output columns [colLo, colHi) to compute (the row's lane); all when omitted. */
  readonly colLo?: Int32Array;
  readonly colHi?: Int32Array;
  /** Per selected row: the contraction range [kLo, kHi) where x can be non-zero (its lane); all when omitted. */
  readonly kLo?: Int32Array;
  readonly kHi?: Int32Array;
}

export function matmulAccumulate(a: MatmulArgs): void {
  const { acc, x, w, lead, layout } = a;
  if (isVirtual(x.array) || isVirtual(w.array)) return; // cost-only run
  const [bT, bK] = x.shape as [number, number];
  const bN = (layout === 'nt' ? w.shape[1] : w.shape[2]) as number;
  const xCols = x.array.shape[1] as number;
  const [, wd1, wd2] = w.array.shape as [number, number, number];
  const [xt0, xk0] = x.origin as [number, number];
  const [wg0, w10, w20] = w.origin as [number, number, number];
  // Real (non-padding) extents inside this block; beyond them operands are zero.
  const g = wg0 + lead;
  if (g >= (w.array.extent[0] as number)) return;
  const validRows = Math.min(bT, (x.array.extent[0] as number) - xt0);
  const wk0 = layout === 'nt' ? w20 : w10;
  const wn0 = layout === 'nt' ? w10 : w20;
  const wkExtent = (layout === 'nt' ? w.array.extent[2] : w.array.extent[1]) as number;
  const wnExtent = (layout === 'nt' ? w.array.extent[1] : w.array.extent[2]) as number;
  const kEnd = Math.max(0, Math.min(bK, (x.array.extent[1] as number) - xk0, wkExtent - wk0));
  const nEnd = Math.max(0, Math.min(bN, wnExtent - wn0));
  if (validRows <= 0 || kEnd === 0 || nEnd === 0) return;
  const xd = x.array.data;
  const wd = w.array.data;
  const count = a.rows === undefined ? bT : (a.rowCount ?? a.rows.length);
  for (let s = 0; s < count; s++) {
    const r = a.rows === undefined ? s : (a.rows[s] as number);
    if (r >= validRows) continue;
    const lo = a.colLo === undefined ? 0 : (a.colLo[s] as number);
    const hi = Math.min(nEnd, a.colHi === undefined ? bN : (a.colHi[s] as number));
    const k0 = a.kLo === undefined ? 0 : (a.kLo[s] as number);
    const k1 = Math.min(kEnd, a.kHi === undefined ? bK : (a.kHi[s] as number));
    const xo = (xt0 + r) * xCols + xk0;
    const ao = r * bN;
    if (layout === 'nt') {
      for (let c = lo; c < hi; c++) {
        const wo = (g * wd1 + wn0 + c) * wd2 + wk0;
        let sum = acc[ao + c] as number;
        for (let k = k0; k < k1; k++) sum = Math.fround(sum + (xd[xo + k] as number) * (wd[wo + k] as number));
        acc[ao + c] = sum;
      }
    } else {
      // k outer, columns inner: each acc[c] still receives its products in increasing k.
      for (let k = k0; k < k1; k++) {
        const xv = xd[xo + k] as number;
        if (xv === 0) continue; // adding an exact zero product leaves an f32 sum unchanged
        const wo = (g * wd1 + wk0 + k) * wd2 + wn0;
        for (let c = lo; c < hi; c++) acc[ao + c] = (acc[ao + c] as number) + xv * (wd[wo + c] as number);
      }
    }
  }
}
