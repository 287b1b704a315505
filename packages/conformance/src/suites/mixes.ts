import { type ReferenceResult, reference } from '@lora/core';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { type BackendCapabilities, type BackendFactory, DEFAULT_TOLERANCE, expectAccurate, makeRuntime, readOnce } from '../harness.js';
import { Random, slotIndices } from '../random.js';
import { LAYER_SHAPE, layerCallData, layerCallTensors } from './layer-calls.js';

/** Rows that no lane touches must be the main mapping's result bit for bit. */
function expectSameRows(actual: Float32Array, want: Float32Array, width: number, rows: readonly number[], label: string): void {
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const b = new Uint32Array(want.buffer, want.byteOffset, want.length);
  for (const t of rows) {
    for (let c = t * width; c < (t + 1) * width; c++) {
      if (a[c] !== b[c]) expect.fail(`${label}: row ${t} is in no mix lane and must not change; column ${c - t * width} differs`);
    }
  }
}

/** A lane: every third row of `rows` gets another slot and a weight, the rest -1. */
function lane(rng: Random, rows: number, L: number, weights: readonly number[]): { indices: Int32Array; scales: Float32Array } {
  const indices = Int32Array.from({ length: rows }, (_, t) => (t % 3 === 0 ? -1 : rng.int(0, L - 1)));
  const scales = Float32Array.from({ length: rows }, (_, t) => weights[t % weights.length] as number);
  return { indices, scales };
}

/**
 * Adapter mixes (issue #19; vLLM RFC 51940): a batch's `mixLanes` add one more adapter term per
 * lane to the rows of mixed requests, `y + Σ_k w_k · s · B_k·A_k·x`, for packed linear, embedding
 * and logits, against the float64 reference applied lane after lane; rows in no lane keep the bits
 * of the batch without lanes. Two batch sizes, so GPU backends take both paths.
 */
export function mixSuite(factory: BackendFactory, caps: BackendCapabilities): void {
  const tolerance = caps.tolerance ?? DEFAULT_TOLERANCE;
  const timeout = caps.timeoutMs ?? 60_000;
  describe('adapter mixes (mixLanes) vs float64 reference applied lane by lane', () => {
    for (const T of [7, 300]) {
      it(
        `T=${T}: two lanes on packed linear, embedding and logits; rows in no lane unchanged`,
        async () => {
          const { H, R, L, V, slices } = LAYER_SHAPE;
          const N = Math.min(T, 7);
          const rng = new Random(T + 5);
          const slots = slotIndices(rng, 'random', T, L);
          const strengths = Float32Array.from({ length: T }, (_, t) => [1, 0.7, -0.4, 2][t % 4] as number);
          const samplerSlots = slotIndices(rng, 'random', N, L);
          const lanes = [lane(rng, T, L, [0.5, -1.5, 0.25]), lane(rng, T, L, [0, 1, 0.3])];
          const samplerLanes = [lane(rng, N, L, [0.6, 1]), lane(rng, N, L, [-0.2])];
          const d = layerCallData(rng, T, N);
          const { xData, aData, bData, width, yData, ids, embA, embB, embY, headX, headA, headB, headY } = d;

          const rt = await makeRuntime(factory, { maxLoras: L, maxLoraRank: R, maxNumTokens: 512 });
          const before = tf.memory().numTensors;
          const tensors = layerCallTensors(d);
          const { loraA, loraB, x, y, tokenIds, ea, eb, ey, hx, ha, hb, hy } = tensors;
          const main = {
            tokenLoraIndices: slots,
            tokenLoraScales: strengths,
            samplerLoraIndices: samplerSlots,
            samplerLoraScales: strengths.slice(0, N),
          };
          const run = async () => [
            await readOnce(rt.punica.addLoRALinear(y, x, loraA, loraB, 0.5, slices)),
            await readOnce(rt.punica.addLoRAEmbedding(ey, tokenIds, ea, eb)),
            await readOnce(rt.punica.addLoRALogits(hy, hx, ha, hb, 1)),
          ];
          try {
            rt.punica.updateMetadata(main);
            const [plainLinear, plainEmbedding, plainLogits] = (await run()) as [Float32Array, Float32Array, Float32Array];
            rt.punica.updateMetadata({
              ...main,
              mixLanes: lanes.map((l, k) => ({
                tokenLoraIndices: l.indices,
                tokenLoraScales: l.scales,
                samplerLoraIndices: (samplerLanes[k] as { indices: Int32Array }).indices,
                samplerLoraScales: (samplerLanes[k] as { scales: Float32Array }).scales,
              })),
            });
            const [linear, embedding, logits] = (await run()) as [Float32Array, Float32Array, Float32Array];

            // The reference: the main mapping's term, then each lane's added to its result.
            const chain = (
              mappings: { indices: ArrayLike<number>; scales: ArrayLike<number> }[],
              step: (y: ArrayLike<number>, m: (typeof mappings)[number]) => ReferenceResult,
            ) => {
              let out: ReferenceResult | undefined;
              let squares = new Float64Array(0);
              for (const m of mappings) {
                out = step(out?.out ?? [], m);
                squares =
                  squares.length === 0
                    ? out.rowScale.map((v) => v * v)
                    : squares.map((v, i) => v + (out as ReferenceResult).rowScale[i] ** 2);
              }
              const last = out as ReferenceResult;
              return { ...last, rowScale: squares.map(Math.sqrt) };
            };
            const tokenMappings = [{ indices: slots, scales: strengths }, ...lanes.map((l) => ({ indices: l.indices, scales: l.scales }))];
            const linearRef = chain(tokenMappings, (prev, m) =>
              reference.referenceLoRALinear({
                x: xData,
                numTokens: T,
                hidden: H,
                loraA: aData,
                rank: R,
                tokenLoraIndices: m.indices,
                tokenScales: m.scales,
                scale: 0.5,
                y: prev.length === 0 ? yData : prev,
                width,
                loraB: bData,
                outputSlices: slices,
              }),
            );
            expectAccurate(linear, linearRef, tolerance, 'addLoRALinear with mix lanes');
            const embeddingRef = chain(tokenMappings, (prev, m) =>
              reference.referenceEmbedding({
                y: prev.length === 0 ? embY : prev,
                numTokens: T,
                width: H,
                tokenIds: ids,
                loraA: embA,
                vocab: V,
                loraB: embB,
                rank: R,
                tokenLoraIndices: m.indices,
                tokenScales: m.scales,
              }),
            );
            expectAccurate(embedding, embeddingRef, tolerance, 'addLoRAEmbedding with mix lanes');
            const samplerMappings = [
              { indices: samplerSlots, scales: strengths.slice(0, N) },
              ...samplerLanes.map((l) => ({ indices: l.indices, scales: l.scales })),
            ];
            const logitsRef = chain(samplerMappings, (prev, m) =>
              reference.referenceLoRALinear({
                x: headX,
                numTokens: N,
                hidden: H,
                loraA: [headA],
                rank: R,
                tokenLoraIndices: m.indices,
                tokenScales: m.scales,
                scale: 1,
                y: prev.length === 0 ? headY : prev,
                width: V,
                loraB: [headB],
                outputSlices: [V],
              }),
            );
            expectAccurate(logits, logitsRef, tolerance, 'addLoRALogits with mix lanes');

            // Rows no lane touches (slot -1 or weight 0 in every lane) keep the bits of the batch without lanes.
            const untouched = (mappings: { indices: ArrayLike<number>; scales: ArrayLike<number> }[], rows: number) =>
              Array.from({ length: rows }, (_, t) => t).filter((t) => mappings.every((m) => m.indices[t] === -1 || m.scales[t] === 0));
            const tokenRows = untouched(
              lanes.map((l) => ({ indices: l.indices, scales: l.scales })),
              T,
            );
            expect(tokenRows.length).toBeGreaterThan(0);
            expectSameRows(linear, plainLinear, width, tokenRows, 'addLoRALinear');
            expectSameRows(embedding, plainEmbedding, H, tokenRows, 'addLoRAEmbedding');
            expectSameRows(
              logits,
              plainLogits,
              V,
              untouched(
                samplerLanes.map((l) => ({ indices: l.indices, scales: l.scales })),
                N,
              ),
              'addLoRALogits',
            );
          } finally {
            tf.dispose(tensors.all);
            rt.dispose();
          }
          expect(tf.memory().numTensors, 'tensors leaked').toBe(before);
        },
        timeout,
      );
    }
  });
}
