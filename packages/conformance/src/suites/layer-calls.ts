import * as tf from '@tensorflow/tfjs-core';
import { stacks, sum } from '../harness.js';
import type { Random } from '../random.js';

/**
 * One batch's random inputs for the three layer-level punica calls a decoder makes — packed
 * q/k/v `addLoRALinear`, `addLoRAEmbedding` and `addLoRALogits` — shared by the suites that check a
 * mapping feature on all three (strengths, mix lanes). Small shapes: H 24, rank 8, 3 slots, a
 * 29-token vocabulary, slices 16/8/8.
 */
export const LAYER_SHAPE: { readonly H: number; readonly R: number; readonly L: number; readonly V: number; readonly slices: number[] } = {
  H: 24,
  R: 8,
  L: 3,
  V: 29,
  slices: [16, 8, 8],
};

export interface LayerCallData {
  readonly T: number;
  /** Sampled rows (lm_head). */
  readonly N: number;
  readonly width: number;
  readonly xData: Float32Array;
  readonly aData: Float32Array[];
  readonly bData: Float32Array[];
  readonly yData: Float32Array;
  readonly ids: Int32Array;
  readonly embA: Float32Array;
  readonly embB: Float32Array;
  readonly embY: Float32Array;
  readonly headX: Float32Array;
  readonly headA: Float32Array;
  readonly headB: Float32Array;
  readonly headY: Float32Array;
}

/** Draws the data (after whatever mapping the caller drew from the same generator). */
export function layerCallData(rng: Random, T: number, N: number): LayerCallData {
  const { H, R, L, V, slices } = LAYER_SHAPE;
  const xData = rng.floats(T * H);
  const aData = slices.map(() => rng.floats(L * R * H));
  const bData = slices.map((O) => rng.floats(L * O * R));
  const width = sum(slices);
  const yData = rng.floats(T * width);
  const ids = Int32Array.from({ length: T }, () => rng.int(0, V - 1));
  const [embA, embB, embY] = [rng.floats(L * V * R), rng.floats(L * H * R), rng.floats(T * H)];
  const [headX, headA, headB, headY] = [rng.floats(N * H), rng.floats(L * R * H), rng.floats(L * V * R), rng.floats(N * V)];
  return { T, N, width, xData, aData, bData, yData, ids, embA, embB, embY, headX, headA, headB, headY };
}

/** The data as tensors; `all` is every one of them, for `tf.dispose`. */
export function layerCallTensors(d: LayerCallData) {
  const { H, R, L, V, slices } = LAYER_SHAPE;
  const { T, N } = d;
  const loraA = stacks(
    d.aData,
    d.aData.map(() => [L, R, H]),
  );
  const loraB = stacks(
    d.bData,
    slices.map((O) => [L, O, R]),
  );
  const x = tf.tensor2d(d.xData, [T, H]);
  const y = tf.tensor2d(d.yData, [T, d.width]);
  const tokenIds = tf.tensor1d(d.ids, 'int32');
  const [ea, eb, ey] = [tf.tensor3d(d.embA, [L, V, R]), tf.tensor3d(d.embB, [L, H, R]), tf.tensor2d(d.embY, [T, H])];
  const [hx, ha, hb, hy] = [
    tf.tensor2d(d.headX, [N, H]),
    tf.tensor3d(d.headA, [L, R, H]),
    tf.tensor3d(d.headB, [L, V, R]),
    tf.tensor2d(d.headY, [N, V]),
  ];
  return {
    loraA,
    loraB,
    x,
    y,
    tokenIds,
    ea,
    eb,
    ey,
    hx,
    ha,
    hb,
    hy,
    all: [...loraA, ...loraB, x, y, tokenIds, ea, eb, ey, hx, ha, hb, hy],
  };
}
