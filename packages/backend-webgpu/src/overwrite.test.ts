import { createLoRA, LoRALinear } from '@lora/core';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { overwriteOnGpu } from './overwrite.js';

tf.env().set('IS_TEST', true);

describe('webgpu slot-only uploads (overwrite)', () => {
  it('a slot write reaches the live stack in place, after the work recorded before it; a rebuilt stack agrees', async () => {
    const rt = await createLoRA({ backend: 'webgpu', maxLoras: 3, maxLoraRank: 2 });
    const w = tf.ones([4, 3]) as tf.Tensor2D;
    const layer = new LoRALinear(rt, { module: 'o_proj', weight: w });
    const x = tf.tensor2d([[1, 1, 1]]);
    try {
      layer.setLoRA(0, Float32Array.of(1, 2, 3), new Float32Array(4).fill(1));
      const before = layer.loraA[0] as tf.Tensor3D;
      await before.data(); // on the GPU now: the next write goes through the queue
      rt.punica.updateMetadata({ tokenLoraIndices: Int32Array.of(0) });
      // Recorded, not yet submitted: it must see slot 0 as it was (x·W + B·A·x = 3 + 6 per output).
      const early = layer.forward(x);
      const tensors = tf.memory().numTensors;
      layer.setLoRA(0, Float32Array.of(10, 20, 30), new Float32Array(4).fill(1));
      layer.setLoRA(2, Float32Array.of(7, 8, 9, 10, 11, 12), new Float32Array(8).fill(2));
      const after = layer.loraA[0] as tf.Tensor3D;
      expect(after).toBe(before); // written in place, not made anew
      expect(tf.memory().numTensors).toBe(tensors);
      expect(Array.from(await early.data())).toEqual([9, 9, 9, 9]);
      const late = layer.forward(x);
      expect(Array.from(await late.data())).toEqual([63, 63, 63, 63]);
      tf.dispose([early, late]);
      expect(Array.from(await after.data())).toEqual([10, 20, 30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 8, 9, 10, 11, 12]);
      expect(Array.from(await (layer.loraB[0] as tf.Tensor3D).data()).slice(16)).toEqual(new Array(8).fill(2));
      // Read back, tfjs keeps the values on the host beside the buffer: a write must reach both.
      layer.setLoRA(0, Float32Array.of(100, 200, 300), new Float32Array(4).fill(1));
      expect(layer.loraA[0]).toBe(before);
      const third = layer.forward(x);
      expect(Array.from(await third.data())).toEqual([603, 603, 603, 603]);
      third.dispose();
      expect(Array.from(await before.data()).slice(0, 3)).toEqual([100, 200, 300]);
      layer.setLoRA(0, Float32Array.of(10, 20, 30), new Float32Array(4).fill(1));
      // A stack someone disposed cannot be written in place: the next read makes it anew from the mirror.
      before.dispose();
      layer.resetLoRA(2);
      const rebuilt = layer.loraA[0] as tf.Tensor3D;
      expect(rebuilt).not.toBe(before);
      expect(Array.from(await rebuilt.data())).toEqual([10, 20, 30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    } finally {
      layer.dispose();
      tf.dispose([w, x]);
      rt.dispose();
    }
  }, 120_000);

  it('refuses what it must not write: shared data, another dtype, a range past the tensor', async () => {
    const rt = await createLoRA({ backend: 'webgpu', maxLoras: 1, maxLoraRank: 1 });
    const t = tf.zeros([2, 2]);
    const ints = tf.zeros([4], 'int32');
    try {
      await t.data();
      expect(overwriteOnGpu(t, 3, Float32Array.of(1, 2))).toBe(false);
      expect(overwriteOnGpu(t, -1, Float32Array.of(1))).toBe(false);
      expect(overwriteOnGpu(ints, 0, Float32Array.of(1))).toBe(false);
      const alias = tf.reshape(t, [4]); // same data, refCount 2
      expect(overwriteOnGpu(t, 0, Float32Array.of(1))).toBe(false);
      alias.dispose();
      expect(overwriteOnGpu(t, 2, Float32Array.of(1, 2))).toBe(true);
      expect(Array.from(await t.data())).toEqual([0, 0, 1, 2]);
    } finally {
      tf.dispose([t, ints]);
      rt.dispose();
    }
  }, 120_000);
});
