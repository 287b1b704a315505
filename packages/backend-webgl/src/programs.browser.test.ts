import { Random, slotIndices } from '@lora/conformance';
import { createLoRA, reference, tokenBuckets } from '@lora/core';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { createWebGLBackend } from './index.js';

describe('webgl programs', () => {
  it('a 200-batch random trace (T 1–4096, 1–8 adapters, ranks 8–64) compiles no more programs than there are token buckets', async () => {
    const rng = new Random(7);
    const rt = await createLoRA({ backend: createWebGLBackend(), maxLoras: 8, maxLoraRank: 64, maxNumTokens: 4096 });
    const H = 24;
    const O = 20;
    const ranks = [8, 16, 32, 64];
    const stacks = new Map(
      ranks.map((R) => [R, { a: tf.randomNormal([8, R, H]) as tf.Tensor3D, b: tf.randomNormal([8, O, R]) as tf.Tensor3D }]),
    );
    for (let i = 0; i < 200; i++) {
      const T = rng.int(1, 4096);
      const R = rng.pick(ranks);
      const slots = slotIndices(rng, rng.pick(['random', 'single', 'requests'] as const), T, rng.int(1, 8));
      rt.punica.updateMetadata({ tokenLoraIndices: slots });
      const x = tf.randomNormal([T, H]) as tf.Tensor2D;
      const y = tf.zeros([T, O]) as tf.Tensor2D;
      const { a, b } = stacks.get(R)!;
      const out = rt.punica.addLoRALinear(y, x, [a], [b], 1, [O]);
      if (i % 40 === 0) await out.data();
      tf.dispose([x, y, out]);
    }
    const compiled = rt.backend.stats?.().programsCompiled ?? Number.NaN;
    expect(compiled).toBeGreaterThan(0);
    expect(compiled).toBeLessThanOrEqual(tokenBuckets(4096).length);
    for (const { a, b } of stacks.values()) tf.dispose([a, b]);
    rt.dispose();
  }, 300_000);

  it('stays within 1e-4 of the float64 reference at H = 8192 (float32 textures, sequential reduction)', async () => {
    const rng = new Random(8192);
    const [T, H, O, R, L] = [16, 8192, 48, 16, 3];
    const rt = await createLoRA({ backend: createWebGLBackend(), maxLoras: L, maxLoraRank: R });
    const slots = slotIndices(rng, 'random', T, L);
    rt.punica.updateMetadata({ tokenLoraIndices: slots });
    const [xData, aData, bData, yData] = [rng.floats(T * H), rng.floats(L * R * H), rng.floats(L * O * R), rng.floats(T * O)];
    const [x, a, b, y] = [
      tf.tensor2d(xData, [T, H]),
      tf.tensor3d(aData, [L, R, H]),
      tf.tensor3d(bData, [L, O, R]),
      tf.tensor2d(yData, [T, O]),
    ];
    const out = rt.punica.addLoRALinear(y, x, [a], [b], 1, [O]);
    const ref = reference.referenceLoRALinear({
      x: xData,
      numTokens: T,
      hidden: H,
      loraA: [aData],
      rank: R,
      tokenLoraIndices: slots,
      scale: 1,
      y: yData,
      width: O,
      loraB: [bData],
      outputSlices: [O],
    });
    const err = reference.maxRelativeRowError((await out.data()) as Float32Array, ref);
    expect(err).toBeLessThanOrEqual(1e-4);
    tf.dispose([x, a, b, y, out]);
    rt.dispose();
  }, 120_000);
});
