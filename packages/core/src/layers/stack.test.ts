import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { overwriteFits } from './stack.js';

describe('overwriteFits', () => {
  it('accepts a write inside a float32 tensor, up to its last element, and nothing else', () => {
    const t = tf.zeros([2, 3]);
    const ints = tf.zeros([6], 'int32');
    try {
      expect(overwriteFits(t, 0, new Float32Array(6))).toBe(true);
      expect(overwriteFits(t, 4, new Float32Array(2))).toBe(true);
      expect(overwriteFits(t, 5, new Float32Array(2))).toBe(false); // one past the end
      expect(overwriteFits(t, -1, new Float32Array(1))).toBe(false);
      expect(overwriteFits(t, 1.5, new Float32Array(1))).toBe(false);
      expect(overwriteFits(t, Number.NaN, new Float32Array(1))).toBe(false);
      expect(overwriteFits(ints, 0, new Float32Array(1))).toBe(false);
    } finally {
      tf.dispose([t, ints]);
    }
  });
});
