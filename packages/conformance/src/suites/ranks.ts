import { MergedLoRALinear, reference } from '@lora/core';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  type BackendCapabilities,
  type BackendFactory,
  DEFAULT_TOLERANCE,
  expectAccurate,
  makeRuntime,
  readOnce,
  stacks,
  sum,
} from '../harness.js';
import { Random, slotIndices } from '../random.js';

/** True ranks of the three slots in a runtime of maxLoraRank 8: both SIMD tails (3, 5) and a full slot. */
const SLOT_RANKS = [3, 8, 5];
const R = 8;

/**
 * `L` stacked slots `[L, rows, cols]` of random values where only the true rank holds weights: rank
 * rows (`rankAxis` 1, A's layout) or rank columns (`rankAxis` 2, B's); the padding is `fill`.
 */
function paddedStack(
  rng: Random,
  rows: number,
  cols: number,
  rankAxis: 1 | 2,
  fill: number,
): { exact: Float32Array; padded: Float32Array } {
  const L = SLOT_RANKS.length;
  const exact = rng.floats(L * rows * cols);
  const padded = exact.slice();
  for (let l = 0; l < L; l++) {
    const rank = SLOT_RANKS[l] as number;
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < cols; j++) {
        if ((rankAxis === 1 ? i : j) < rank) continue;
        const at = (l * rows + i) * cols + j;
        exact[at] = 0;
        padded[at] = fill;
      }
    }
  }
  return { exact, padded };
}

/**
 * True ranks (`slotRanks`, what the layers pass with every call): adapters of ranks 3, 8 and 5
 * padded to `maxLoraRank` 8, in one mixed batch with base-only rows, and every row on the rank-5
 * adapter (the single-adapter programs GPU backends run), against the float64 reference. With zero
 * padding every backend must match it; with NaN in the padding, a backend that declares
 * `skipsPaddedRanks` must still match it (it never reads a padded row), others skip.
 */
export function rankSuite(factory: BackendFactory, caps: BackendCapabilities): void {
  const tolerance = caps.tolerance ?? DEFAULT_TOLERANCE;
  const timeout = caps.timeoutMs ?? 60_000;
  describe('true ranks (slotRanks): ranks 3, 8, 5 padded to 8 vs float64 reference', () => {
    for (const [fill, T, batch] of [
      [0, 7, 'mixed'],
      [0, 300, 'mixed'],
      [Number.NaN, 7, 'mixed'],
      [Number.NaN, 300, 'mixed'],
      [Number.NaN, 9, 'single'],
    ] as const) {
      it(
        `T=${T}, padding ${fill}, ${batch === 'mixed' ? 'one mixed batch' : 'every row on the rank-5 slot'}: packed linear, embedding and logits`,
        async ({ skip }) => {
          const [H, L, V, N] = [24, SLOT_RANKS.length, 29, Math.min(T, 6)];
          const slices = [16, 8, 8];
          const width = sum(slices);
          const rng = new Random(100 + T);
          const slots = batch === 'mixed' ? slotIndices(rng, 'random', T, L) : new Int32Array(T).fill(2);
          const samplerSlots = batch === 'mixed' ? slotIndices(rng, 'random', N, L) : new Int32Array(N).fill(2);
          const a = slices.map(() => paddedStack(rng, R, H, 1, fill));
          const b = slices.map((O) => paddedStack(rng, O, R, 2, fill));
          const [embA, embB] = [paddedStack(rng, V, R, 2, fill), paddedStack(rng, H, R, 2, fill)];
          const [headA, headB] = [paddedStack(rng, R, H, 1, fill), paddedStack(rng, V, R, 2, fill)];
          const [xData, yData, embY, headX, headY] = [
            rng.floats(T * H),
            rng.floats(T * width),
            rng.floats(T * H),
            rng.floats(N * H),
            rng.floats(N * V),
          ];
          const ids = Int32Array.from({ length: T }, () => rng.int(0, V - 1));

          const rt = await makeRuntime(factory, { maxLoras: L, maxLoraRank: R, maxNumTokens: 512 });
          const before = tf.memory().numTensors;
          try {
            if (Number.isNaN(fill) && rt.backend.skipsPaddedRanks !== true) {
              skip(`${rt.backend.name} multiplies the whole padded rank (it does not declare skipsPaddedRanks)`);
            }
            const loraA = stacks(
              a.map((s) => s.padded),
              a.map(() => [L, R, H]),
            );
            const loraB = stacks(
              b.map((s) => s.padded),
              slices.map((O) => [L, O, R]),
            );
            const inputs = [
              tf.tensor2d(xData, [T, H]),
              tf.tensor2d(yData, [T, width]),
              tf.tensor1d(ids, 'int32'),
              tf.tensor3d(embA.padded, [L, V, R]),
              tf.tensor3d(embB.padded, [L, H, R]),
              tf.tensor2d(embY, [T, H]),
              tf.tensor2d(headX, [N, H]),
              tf.tensor3d(headA.padded, [L, R, H]),
              tf.tensor3d(headB.padded, [L, V, R]),
              tf.tensor2d(headY, [N, V]),
            ] as const;
            const [x, y, tokenIds, ea, eb, ey, hx, ha, hb, hy] = inputs;
            try {
              rt.punica.updateMetadata({ tokenLoraIndices: slots, samplerLoraIndices: samplerSlots });
              const common = { numTokens: T, rank: R, tokenLoraIndices: slots };

              const linear = await readOnce(rt.punica.addLoRALinear(y, x, loraA, loraB, 0.5, slices, SLOT_RANKS));
              const linearRef = reference.referenceLoRALinear({
                ...common,
                x: xData,
                hidden: H,
                loraA: a.map((s) => s.exact),
                scale: 0.5,
                y: yData,
                width,
                loraB: b.map((s) => s.exact),
                outputSlices: slices,
              });
              expectAccurate(linear, linearRef, tolerance, 'addLoRALinear');
              // The same through the two separate calls (a backend that fuses them has both paths).
              const shrunk = rt.punica.shrink(x, loraA, 0.5, SLOT_RANKS);
              const shrunkValues = (await shrunk.data()) as Float32Array;
              const expanded = await readOnce(rt.punica.addExpand(y, shrunk, loraB, slices, { slotRanks: SLOT_RANKS }));
              shrunk.dispose();
              expectAccurate(expanded, linearRef, tolerance, 'shrink + addExpand');
              // Rows past a slot's rank are 0, whatever its padding holds: the padding is not the adapter's.
              const shrinkRef = reference.referenceShrink({ ...common, x: xData, hidden: H, loraA: a.map((s) => s.exact), scale: 0.5 });
              expectAccurate(shrunkValues, shrinkRef, tolerance, 'shrink');

              const embedding = await readOnce(rt.punica.addLoRAEmbedding(ey, tokenIds, ea, eb, SLOT_RANKS));
              const embeddingRef = reference.referenceEmbedding({
                ...common,
                y: embY,
                width: H,
                tokenIds: ids,
                loraA: embA.exact,
                vocab: V,
                loraB: embB.exact,
              });
              expectAccurate(embedding, embeddingRef, tolerance, 'addLoRAEmbedding');

              const logits = await readOnce(rt.punica.addLoRALogits(hy, hx, ha, hb, 1, SLOT_RANKS));
              const logitsRef = reference.referenceLoRALinear({
                x: headX,
                numTokens: N,
                hidden: H,
                loraA: [headA.exact],
                rank: R,
                tokenLoraIndices: samplerSlots,
                scale: 1,
                y: headY,
                width: V,
                loraB: [headB.exact],
                outputSlices: [V],
              });
              expectAccurate(logits, logitsRef, tolerance, 'addLoRALogits');
            } finally {
              tf.dispose([...inputs, ...loraA, ...loraB]);
            }
          } finally {
            rt.dispose(); // GPU backends hold the batch's index uploads until then
          }
          expect(tf.memory().numTensors, 'tensors leaked').toBe(before);
        },
        timeout,
      );
    }
  });
  slotRankLayoutCases(factory, caps);
}

/**
 * B in a slot-rank stack (`BLayout` 'slot-rank'): slot l's `[rows, K_l]` in the first rows·K_l values
 * of its rows·R, the rest `fill`. `exact` is the zero-padded `[L, rows, R]` stack of the same weights.
 */
function slotRankStack(exact: Float32Array, rows: number, fill: number): Float32Array {
  const out = new Float32Array(exact.length).fill(fill);
  SLOT_RANKS.forEach((K, l) => {
    for (let o = 0; o < rows; o++) {
      for (let k = 0; k < K; k++) out[l * rows * R + o * K + k] = exact[(l * rows + o) * R + k] as number;
    }
  });
  return out;
}

/**
 * The 'slot-rank' B layout (each slot's rows at its own rank, which the layers write for backends
 * that declare `readsSlotRankB`): addLoRALinear, shrink + addExpand and addLoRALogits give the bits
 * of the same calls on padded stacks — the layout moves B's values, not the arithmetic — with NaN
 * in every value past a slot's rows, so nothing there is read. Other backends skip.
 */
function slotRankLayoutCases(factory: BackendFactory, caps: BackendCapabilities): void {
  const timeout = caps.timeoutMs ?? 60_000;
  describe("B at each slot's rank (bLayout 'slot-rank'): ranks 3, 8, 5 in stacks of rank 8", () => {
    it(
      'a packed layer whose slices hold ranks 5 and 2 in one slot (8 and none, none and 3 in others) against the float64 reference, in its own layout',
      async () => {
        const [H, L, T] = [12, 3, 5];
        const slices = [6, 4];
        const rng = new Random(321);
        const rt = await makeRuntime(factory, { maxLoras: L, maxLoraRank: R });
        const before = tf.memory().numTensors;
        const weight = tf.zeros([sum(slices), H]) as tf.Tensor2D;
        const layer = new MergedLoRALinear(rt, { modules: ['q_proj', 'v_proj'], outputSizes: slices, weight });
        const x = tf.tensor2d(rng.floats(T * H), [T, H]);
        try {
          // PEFT layouts per slot and slice: A [r, H], B [O_s, r]; null where the adapter leaves a slice out.
          const ranks = [
            [5, 2],
            [8, 0],
            [0, 3],
          ];
          const weights = ranks.map((pair) =>
            pair.map((r, s) => (r === 0 ? null : { a: rng.floats(r * H), b: rng.floats((slices[s] as number) * r), r })),
          );
          for (const [slot, pair] of weights.entries()) {
            layer.setLoRA(
              slot,
              pair.map((w) => w?.a ?? null),
              pair.map((w) => w?.b ?? null),
            );
          }
          const tokens = Int32Array.of(0, 1, -1, 2, 0);
          rt.punica.updateMetadata({ tokenLoraIndices: tokens });
          const got = await readOnce(layer.forward(x));
          // The same adapters zero-padded to rank R, vLLM's layout, for the reference.
          const padA = slices.map((_, s) => {
            const out = new Float32Array(L * R * H);
            weights.forEach((pair, slot) => {
              const w = pair[s];
              if (w) out.set(w.a, slot * R * H);
            });
            return out;
          });
          const padB = slices.map((O, s) => {
            const out = new Float32Array(L * O * R);
            weights.forEach((pair, slot) => {
              const w = pair[s];
              for (let o = 0; o < O && w; o++) for (let k = 0; k < w.r; k++) out[(slot * O + o) * R + k] = w.b[o * w.r + k] as number;
            });
            return out;
          });
          const ref = reference.referenceLoRALinear({
            x: await x.data(),
            numTokens: T,
            hidden: H,
            loraA: padA,
            rank: R,
            tokenLoraIndices: tokens,
            scale: 1,
            y: new Float32Array(T * sum(slices)),
            width: sum(slices),
            loraB: padB,
            outputSlices: slices,
          });
          expectAccurate(got, ref, caps.tolerance ?? DEFAULT_TOLERANCE, `forward (${layer.bLayout} layout)`);
        } finally {
          layer.dispose();
          tf.dispose([weight, x]);
          rt.dispose();
        }
        expect(tf.memory().numTensors, 'tensors leaked').toBe(before);
      },
      timeout,
    );

    for (const [T, batch] of [
      [7, 'mixed'],
      [300, 'mixed'],
      [9, 'single'],
    ] as const) {
      it(
        `T=${T}, ${batch === 'mixed' ? 'one mixed batch' : 'every row on the rank-5 slot'}: the bits of the padded layout`,
        async ({ skip }) => {
          const [H, L, V, N] = [24, SLOT_RANKS.length, 29, Math.min(T, 6)];
          const slices = [16, 8, 8];
          const width = sum(slices);
          const rng = new Random(200 + T);
          const slots = batch === 'mixed' ? slotIndices(rng, 'random', T, L) : new Int32Array(T).fill(2);
          const samplerSlots = batch === 'mixed' ? slotIndices(rng, 'random', N, L) : new Int32Array(N).fill(2);
          const a = slices.map(() => paddedStack(rng, R, H, 1, 0).exact);
          const b = slices.map((O) => paddedStack(rng, O, R, 2, 0).exact);
          const [headA, headB] = [paddedStack(rng, R, H, 1, 0).exact, paddedStack(rng, V, R, 2, 0).exact];
          const rt = await makeRuntime(factory, { maxLoras: L, maxLoraRank: R, maxNumTokens: 512 });
          const before = tf.memory().numTensors;
          try {
            if (rt.backend.readsSlotRankB !== true) skip(`${rt.backend.name} reads B stacks in the padded layout only (no readsSlotRankB)`);
            const dims = slices.map((O) => [L, O, R] as [number, number, number]);
            const loraA = stacks(
              a,
              slices.map(() => [L, R, H]),
            );
            const padded = stacks(b, dims);
            const compact = stacks(
              b.map((stack, s) => slotRankStack(stack, slices[s] as number, Number.NaN)),
              dims,
            );
            const inputs = [
              tf.tensor2d(rng.floats(T * H), [T, H]),
              tf.tensor2d(rng.floats(T * width), [T, width]),
              tf.tensor2d(rng.floats(N * H), [N, H]),
              tf.tensor3d(headA, [L, R, H]),
              tf.tensor3d(headB, [L, V, R]),
              tf.tensor3d(slotRankStack(headB, V, Number.NaN), [L, V, R]),
              tf.tensor2d(rng.floats(N * V), [N, V]),
            ] as const;
            const [x, y, hx, ha, hbPadded, hbCompact, hy] = inputs;
            const slotRank = { bLayout: 'slot-rank' } as const;
            try {
              rt.punica.updateMetadata({ tokenLoraIndices: slots, samplerLoraIndices: samplerSlots });
              const bits = async (label: string, want: tf.Tensor, got: tf.Tensor) =>
                expect(Array.from(await readOnce(got)), label).toEqual(Array.from(await readOnce(want)));
              await bits(
                'addLoRALinear',
                rt.punica.addLoRALinear(y, x, loraA, padded, 0.5, slices, SLOT_RANKS),
                rt.punica.addLoRALinear(y, x, loraA, compact, 0.5, slices, SLOT_RANKS, slotRank),
              );
              const shrunk = rt.punica.shrink(x, loraA, 0.5, SLOT_RANKS);
              await bits(
                'shrink + addExpand',
                rt.punica.addExpand(y, shrunk, padded, slices, { slotRanks: SLOT_RANKS }),
                rt.punica.addExpand(y, shrunk, compact, slices, { slotRanks: SLOT_RANKS, ...slotRank }),
              );
              shrunk.dispose();
              await bits(
                'addLoRALogits',
                rt.punica.addLoRALogits(hy, hx, ha, hbPadded, 1, SLOT_RANKS),
                rt.punica.addLoRALogits(hy, hx, ha, hbCompact, 1, SLOT_RANKS, slotRank),
              );
            } finally {
              tf.dispose([...inputs, ...loraA, ...padded, ...compact]);
            }
          } finally {
            rt.dispose();
          }
          expect(tf.memory().numTensors, 'tensors leaked').toBe(before);
        },
        timeout,
      );
    }
  });
}
