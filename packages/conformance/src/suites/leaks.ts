import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { type BackendCapabilities, type BackendFactory, makeRuntime } from '../harness.js';
import { Random, type SlotPattern, slotIndices } from '../random.js';

const PATTERNS: SlotPattern[] = ['random', 'none', 'single', 'single-with-none', 'requests'];

/**
 * Many random batches through every public call (and some rejected calls) must leave the tensor
 * count where it was: kernels free their temporaries and the wrapper keeps nothing per batch.
 */
export function leakSuite(factory: BackendFactory, caps: BackendCapabilities): void {
  const batches = caps.leakBatches ?? 1000;

  describe('no tensor leaks', () => {
    it(
      `tf.memory() (tensors, bytes${caps.gpuMemory === 'deferred' ? '' : ', GPU memory in use'}) is flat across ${batches} random batches`,
      async () => {
        const L = 4;
        const R = 8;
        const H = 24;
        const V = 19;
        const slices = [10, 3, 3];
        const rng = new Random(7);
        const rt = await makeRuntime(factory, { maxLoras: L, maxLoraRank: R, maxNumTokens: 64 });
        const loraA = slices.map(() => tf.tensor3d(rng.floats(L * R * H), [L, R, H]));
        const loraB = slices.map((O) => tf.tensor3d(rng.floats(L * O * R), [L, O, R]));
        const embA = tf.tensor3d(rng.floats(L * V * R), [L, V, R]);
        const embB = tf.tensor3d(rng.floats(L * H * R), [L, H, R]);
        const headB = tf.tensor3d(rng.floats(L * V * R), [L, V, R]);

        // `tokens`: a fixed count for the probe batches that bracket the run (same shapes before and after).
        const runBatch = (i: number, tokens?: number): void => {
          const T = tokens ?? rng.int(1, 64);
          const N = tokens === undefined ? rng.int(1, 4) : 2;
          rt.punica.updateMetadata({
            tokenLoraIndices: slotIndices(rng, PATTERNS[i % PATTERNS.length]!, T, L),
            samplerLoraIndices: slotIndices(rng, 'random', N, L),
          });
          const x = tf.tensor2d(rng.floats(T * H), [T, H]);
          const y = tf.tensor2d(rng.floats(T * 16), [T, 16]);
          const ids = tf.tensor1d(
            Int32Array.from({ length: T }, () => rng.int(0, V - 1)),
            'int32',
          );
          const logitsIn = tf.tensor2d(rng.floats(N * V), [N, V]);
          const hidden = tf.tensor2d(rng.floats(N * H), [N, H]);
          const shrunk = rt.punica.shrink(x, loraA, 1);
          const outputs = [
            shrunk,
            rt.punica.addExpand(y, shrunk, loraB, slices, { addInputs: i % 2 === 0 }),
            rt.punica.addLoRALinear(y, x, loraA, loraB, 0.5, slices),
            rt.punica.addLoRAEmbedding(x, ids, embA, embB),
            rt.punica.addLoRALogits(logitsIn, hidden, loraA[0]!, headB, 1),
          ];
          if (i % 10 === 0) {
            // A rejected call in the middle of the stream must not leak either.
            expect(() => rt.punica.addLoRALinear(y, x, loraA, loraB, 1, [10, 3])).toThrow(/E_SHAPE/);
          }
          tf.dispose([x, y, ids, logitsIn, hidden, ...outputs]);
        };

        // What the backend holds on purpose (per-batch uploads, bounded) is not a leak.
        const memory = async () => {
          // GPU backends free buffers once the work that used them has finished: let it finish.
          const flush = tf.zeros([1]);
          await flush.data();
          flush.dispose();
          const m = tf.memory();
          const s = rt.backend.stats?.();
          const held = s?.tensorsHeld ?? 0;
          expect(held, 'tensors a backend holds between calls must stay bounded').toBeLessThanOrEqual(4);
          // GPU backends: bytes of textures / buffers in use (not the free pool tfjs recycles from).
          const gpuBytes = (m as { numBytesInGPU?: number }).numBytesInGPU ?? 0;
          return {
            numTensors: m.numTensors - held,
            numDataBuffers: m.numDataBuffers - held,
            numBytes: m.numBytes - (s?.bytesHeld ?? 0),
            gpuBytes,
          };
        };
        runBatch(0, 7);
        const before = await memory();
        for (let i = 1; i <= batches; i++) runBatch(i);
        // The same probe again: what the backend holds for the last batch is then the same size as before.
        runBatch(0, 7);
        const after = await memory();
        expect(after.numTensors).toBe(before.numTensors);
        expect(after.numDataBuffers).toBe(before.numDataBuffers);
        expect(after.numBytes).toBe(before.numBytes);
        if (caps.gpuMemory !== 'deferred') expect(after.gpuBytes, 'GPU memory in use (textures) must not grow').toBe(before.gpuBytes);

        tf.dispose([...loraA, ...loraB, embA, embB, headB]);
        rt.dispose();
      },
      (caps.timeoutMs ?? 60_000) * 4,
    );

    it('creating and disposing runtimes leaks nothing', async () => {
      // The first runtime initialises the tfjs backend (there may be none registered before it).
      (await makeRuntime(factory, { maxLoras: 2, maxLoraRank: 4 })).dispose();
      const before = tf.memory().numTensors;
      for (let i = 0; i < 20; i++) {
        const rt = await makeRuntime(factory, { maxLoras: 2, maxLoraRank: 4 });
        rt.punica.updateMetadata({ tokenLoraIndices: [0, 1, -1] });
        rt.dispose();
      }
      expect(tf.memory().numTensors).toBe(before);
    });
  });
}
