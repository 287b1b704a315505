import { type ReferenceResult, reference } from '@lora/core';
import type { SlotContent } from './model.js';

/**
 * Float64 expectations for a layer's forward from the model's slot contents: the stacked
 * `[L, R, in]` / `[L, out, R]` weights a layer should hold (rank zero-padded, scale folded into
 * B), then core's reference kernels on top of the base product computed here in float64.
 */

export interface LinearShape {
  readonly inFeatures: number;
  /** Output width per slice. */
  readonly outputs: readonly number[];
}

function stacks(contents: readonly SlotContent[], shape: LinearShape, maxLoraRank: number) {
  const L = contents.length;
  const R = maxLoraRank;
  const H = shape.inFeatures;
  const a = shape.outputs.map(() => new Float64Array(L * R * H));
  const b = shape.outputs.map((O) => new Float64Array(L * O * R));
  contents.forEach((slot, l) => {
    slot.forEach((c, s) => {
      if (c === null) return;
      const O = shape.outputs[s] as number;
      (a[s] as Float64Array).set(c.a, l * R * H); // [r, H] is the first r rows of the slot's [R, H]
      const bs = b[s] as Float64Array;
      for (let o = 0; o < O; o++) {
        for (let k = 0; k < c.rank; k++) bs[(l * O + o) * R + k] = Math.fround(c.scale * (c.b[o * c.rank + k] as number));
      }
    });
  });
  return { a, b };
}

/** `x·Wᵀ` (W `[O, H]` row-major, the slices' weights stacked) plus each row's slot's LoRA term. */
export function expectedLinear(args: {
  x: Float32Array;
  rows: number;
  weight: Float32Array;
  shape: LinearShape;
  contents: readonly SlotContent[];
  maxLoraRank: number;
  rowSlots: readonly number[];
}): ReferenceResult {
  const { x, rows, weight, shape } = args;
  const H = shape.inFeatures;
  const O = shape.outputs.reduce((n, o) => n + o, 0);
  const y = new Float64Array(rows * O);
  // The base product is computed in float32 by the runtime: its rows carry the products' scale too.
  const baseSquares = new Float64Array(rows);
  for (let t = 0; t < rows; t++) {
    for (let o = 0; o < O; o++) {
      let sum = 0;
      for (let h = 0; h < H; h++) {
        const p = (x[t * H + h] as number) * (weight[o * H + h] as number);
        sum += p;
        baseSquares[t] = (baseSquares[t] as number) + p * p;
      }
      y[t * O + o] = sum;
    }
  }
  const { a, b } = stacks(args.contents, shape, args.maxLoraRank);
  const result = reference.referenceLoRALinear({
    x,
    y,
    numTokens: rows,
    hidden: H,
    width: O,
    loraA: a,
    loraB: b,
    rank: args.maxLoraRank,
    outputSlices: shape.outputs,
    tokenLoraIndices: args.rowSlots,
    scale: 1,
  });
  for (let t = 0; t < rows; t++) result.rowScale[t] = Math.hypot(result.rowScale[t] as number, Math.sqrt(baseSquares[t] as number));
  return result;
}

/** `W[id] + scale · B · A[:, id]` with PEFT's embedding layouts (A `[r, V]`, B `[D, r]`). */
export function expectedEmbedding(args: {
  ids: Int32Array;
  table: Float32Array;
  vocab: number;
  dim: number;
  contents: readonly SlotContent[];
  maxLoraRank: number;
  rowSlots: readonly number[];
}): ReferenceResult {
  const { ids, table, vocab: V, dim: D, contents, maxLoraRank: R } = args;
  const T = ids.length;
  const y = new Float64Array(T * D);
  for (let t = 0; t < T; t++) y.set(table.subarray((ids[t] as number) * D, ((ids[t] as number) + 1) * D), t * D);
  const L = contents.length;
  const a = new Float64Array(L * V * R);
  const b = new Float64Array(L * D * R);
  contents.forEach((slot, l) => {
    const c = slot[0];
    if (!c) return;
    for (let k = 0; k < c.rank; k++) for (let v = 0; v < V; v++) a[(l * V + v) * R + k] = c.a[k * V + v] as number;
    for (let d = 0; d < D; d++)
      for (let k = 0; k < c.rank; k++) b[(l * D + d) * R + k] = Math.fround(c.scale * (c.b[d * c.rank + k] as number));
  });
  return reference.referenceEmbedding({
    y,
    numTokens: T,
    width: D,
    tokenIds: ids,
    loraA: a,
    vocab: V,
    loraB: b,
    rank: R,
    tokenLoraIndices: args.rowSlots,
  });
}
