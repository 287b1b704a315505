import { createLoRA } from '@lora/core';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { createTpuSimBackend, TPU_SIM_EXPAND, TPU_SIM_SHRINK } from './index.js';

describe('tpu-sim as a LoRA backend', () => {
  it('runs shrink and expand as tfjs kernels through the engine (tf.profile sees them, tidy frees them)', async () => {
    const rt = await createLoRA({ backend: createTpuSimBackend(), maxLoras: 2, maxLoraRank: 4 });
    const [x, a, b, y] = [tf.ones([3, 8]), tf.ones([2, 4, 8]), tf.ones([2, 5, 4]), tf.zeros([3, 5])] as [
      tf.Tensor2D,
      tf.Tensor3D,
      tf.Tensor3D,
      tf.Tensor2D,
    ];
    try {
      rt.punica.updateMetadata({ tokenLoraIndices: [0, -1, 1] });
      const before = tf.memory().numTensors;
      const profile = await tf.profile(() => tf.tidy(() => rt.punica.addLoRALinear(y, x, [a], [b], 1, [5])));
      expect(profile.kernelNames).toEqual(expect.arrayContaining([TPU_SIM_SHRINK, TPU_SIM_EXPAND]));
      const out = profile.result as tf.Tensor2D;
      // Every product is exactly 1 (bf16-exact): shrink gives 8 per rank column, expand 4·8 = 32.
      expect(Array.from(await out.data())).toEqual([32, 32, 32, 32, 32, 0, 0, 0, 0, 0, 32, 32, 32, 32, 32]);
      out.dispose();
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      tf.dispose([x, a, b, y]);
      rt.dispose();
    }
  });

  it('runtimes with different presets coexist: each call uses its own simulator and counts its own costs', async () => {
    const off = createTpuSimBackend({ preset: 'all-off' });
    const on = createTpuSimBackend({ preset: 'all-on' });
    const rts = [
      await createLoRA({ backend: off, maxLoras: 2, maxLoraRank: 4 }),
      await createLoRA({ backend: on, maxLoras: 2, maxLoraRank: 4 }),
    ];
    const [x, a] = [tf.ones([20, 8]) as tf.Tensor2D, tf.ones([2, 4, 8]) as tf.Tensor3D];
    try {
      for (const rt of rts) {
        rt.punica.updateMetadata({ tokenLoraIndices: Array.from({ length: 20 }, (_, t) => t % 2) });
        rt.punica.shrink(x, [a], 1).dispose();
      }
      expect(off.sim.lastCall.find((op) => op.kind === 'pallas')?.op).toBe('bgmv');
      expect(on.sim.lastCall.find((op) => op.kind === 'pallas')?.op).toBe('shrink');
      expect(off.stats!().calls).toBe(1);
      expect(on.stats!().calls).toBe(1);
      // The first kernel issues one matmul per token: far more MXU work than the laned, block-skipping one.
      expect(off.stats!().mxuFlops).toBeGreaterThan(on.stats!().mxuFlops);
    } finally {
      tf.dispose([x, a]);
      for (const rt of rts) rt.dispose();
    }
  });
});
