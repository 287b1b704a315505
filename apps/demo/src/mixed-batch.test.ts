import '@tensorflow/tfjs-backend-cpu';
import '@lora/backend-cpu';
import { createReferenceBackend } from '@lora/core';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { runMixedBatch } from './mixed-batch.js';

tf.env().set('IS_TEST', true);

describe('quickstart mixed batch', () => {
  it.each(['cpu', 'reference'])('every request matches its merged-weight reference on %s', async (backend) => {
    const before = tf.memory().numTensors;
    const r = await runMixedBatch({ backend });
    expect(r.backend).toBe(backend);
    expect(r.requests.map((q) => q.pass)).toEqual([true, true, true, true, true]);
    expect(r.maxError).toBeLessThan(1e-4);
    expect(r.requests[2]!.slot).toBe(-1);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('reports FAIL when a backend is off by more than the promise', async () => {
    const exact = createReferenceBackend();
    const skewed = {
      ...exact,
      expand: (...args: Parameters<typeof exact.expand>) => tf.tidy(() => tf.add(exact.expand(...args), 1e-2) as tf.Tensor2D),
    };
    const r = await runMixedBatch({ backend: skewed, hidden: 16, slices: [5, 3] });
    expect(r.requests.map((q) => q.pass)).toEqual([false, false, false, false, false]);
  });
});
