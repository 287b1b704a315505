import { Random, slotIndices } from '@lora/conformance';
import { createLoRA, reference } from '@lora/core';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { createWebGLBackend } from './index.js';

describe('webgl precision', () => {
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
    console.info(`webgl, H = ${H}: max row error ${err.toExponential(2)}`);
    expect(err).toBeLessThanOrEqual(1e-4);
    tf.dispose([x, a, b, y, out]);
    rt.dispose();
  }, 120_000);
});
