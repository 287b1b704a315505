import { createLoRA } from '@lora/core';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { overwriteOnGpu } from './overwrite.js';

tf.env().set('IS_TEST', true);

describe('webgpu slot-only uploads (overwrite)', () => {
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
