import { reference } from '@lora/core';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { type BackendCapabilities, type BackendFactory, DEFAULT_TOLERANCE, expectAccurate, makeRuntime, readOnce } from '../harness.js';
import { Random, slotIndices } from '../random.js';
import { LAYER_SHAPE, layerCallData, layerCallTensors } from './layer-calls.js';

/** Strengths a request may ask for: as trained, weaker, off (= the base model), negated, stronger. */
const STRENGTHS = [1, 0.4, 0, -0.5, 2, 0.25];

/** Rows whose strength is 0 must equal y bit for bit (the base model's output), whatever their slot. */
function expectBaseRows(actual: Float32Array, y: Float32Array, width: number, strengths: Float32Array, label: string): void {
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const b = new Uint32Array(y.buffer, y.byteOffset, y.length);
  strengths.forEach((f, t) => {
    if (f !== 0) return;
    for (let c = t * width; c < (t + 1) * width; c++) {
      if (a[c] !== b[c])
        expect.fail(`${label}: row ${t} has strength 0 and must equal the base output bit for bit; column ${c - t * width} differs`);
    }
  });
}

/**
 * Per-request strength (vLLM issue 52733's `lora_scale`) as one mixed batch sees it: every row's
 * LoRA term times its strength, on every backend, against the float64 reference; strength 0 is the
 * base model bit for bit. Two batch sizes, so GPU backends take both their decode and prefill paths.
 */
export function strengthSuite(factory: BackendFactory, caps: BackendCapabilities): void {
  const tolerance = caps.tolerance ?? DEFAULT_TOLERANCE;
  const timeout = caps.timeoutMs ?? 60_000;
  describe('per-row strength (tokenLoraScales) vs float64 reference; strength 0 = base bit for bit', () => {
    for (const T of [6, 300]) {
      it(
        `T=${T}: packed linear, embedding and logits in one mixed batch`,
        async () => {
          const { H, R, L, V, slices } = LAYER_SHAPE;
          const N = Math.min(T, 6);
          const rng = new Random(T);
          const slots = slotIndices(rng, 'random', T, L);
          const strengths = Float32Array.from({ length: T }, (_, t) => STRENGTHS[t % STRENGTHS.length] as number);
          const samplerSlots = slotIndices(rng, 'random', N, L);
          const samplerStrengths = strengths.slice(0, N);
          const d = layerCallData(rng, T, N);
          const { xData, aData, bData, width, yData, ids, embA, embB, embY, headX, headA, headB, headY } = d;

          const rt = await makeRuntime(factory, { maxLoras: L, maxLoraRank: R, maxNumTokens: 512 });
          const before = tf.memory().numTensors;
          const tensors = layerCallTensors(d);
          const { loraA, loraB, x, y, tokenIds, ea, eb, ey, hx, ha, hb, hy } = tensors;
          try {
            rt.punica.updateMetadata({
              tokenLoraIndices: slots,
              tokenLoraScales: strengths,
              samplerLoraIndices: samplerSlots,
              samplerLoraScales: samplerStrengths,
            });
            const common = { numTokens: T, rank: R, tokenLoraIndices: slots, tokenScales: strengths };

            const linear = await readOnce(rt.punica.addLoRALinear(y, x, loraA, loraB, 0.5, slices));
            const linearRef = reference.referenceLoRALinear({
              ...common,
              x: xData,
              hidden: H,
              loraA: aData,
              scale: 0.5,
              y: yData,
              width,
              loraB: bData,
              outputSlices: slices,
            });
            expectAccurate(linear, linearRef, tolerance, 'addLoRALinear');
            expectBaseRows(linear, yData, width, strengths, 'addLoRALinear');

            const embedding = await readOnce(rt.punica.addLoRAEmbedding(ey, tokenIds, ea, eb));
            const embeddingRef = reference.referenceEmbedding({
              ...common,
              y: embY,
              width: H,
              tokenIds: ids,
              loraA: embA,
              vocab: V,
              loraB: embB,
            });
            expectAccurate(embedding, embeddingRef, tolerance, 'addLoRAEmbedding');
            expectBaseRows(embedding, embY, H, strengths, 'addLoRAEmbedding');

            const logits = await readOnce(rt.punica.addLoRALogits(hy, hx, ha, hb, 1));
            const logitsRef = reference.referenceLoRALinear({
              x: headX,
              numTokens: N,
              hidden: H,
              loraA: [headA],
              rank: R,
              tokenLoraIndices: samplerSlots,
              tokenScales: samplerStrengths,
              scale: 1,
              y: headY,
              width: V,
              loraB: [headB],
              outputSlices: [V],
            });
            expectAccurate(logits, logitsRef, tolerance, 'addLoRALogits');
            expectBaseRows(logits, headY, V, samplerStrengths, 'addLoRALogits');
          } finally {
            tf.dispose(tensors.all);
            rt.dispose(); // GPU backends hold the batch's index uploads until then
          }
          expect(tf.memory().numTensors, 'tensors leaked').toBe(before);
        },
        timeout,
      );
    }
  });
}
