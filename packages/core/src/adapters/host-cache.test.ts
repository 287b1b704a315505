import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { createLoRA } from '../create.js';
import { LoRALinear } from '../layers/linear.js';
import { createReferenceBackend } from '../reference-backend.js';
import { codeOf } from '../test-support.js';
import { type AdapterModuleWeights, createAdapter } from './adapter.js';
import { adapterBytes } from './manager.js';

tf.env().set('IS_TEST', true);

const [H, O] = [5, 4];
const module = (rank: number, k: number): AdapterModuleWeights => ({
  name: 'm',
  kind: 'linear',
  rank,
  scale: 1,
  a: Float32Array.from({ length: rank * H }, (_, i) => Math.sin(i + k)),
  b: Float32Array.from({ length: O * rank }, (_, i) => Math.cos(i + k)),
  inFeatures: H,
  outFeatures: O,
});
const adapter = (id: string, rank = 2) => createAdapter(id, [module(rank, id.length)]);
/** A rank-2 adapter of this layer: (2·5 + 4·2) floats. */
const RANK2 = (2 * H + O * 2) * 4;

describe('host cache sized in bytes (maxCpuLoraBytes)', () => {
  it('counts adapters at their true rank, evicts least recently used unpinned ones outside the batch, and refuses what cannot fit without evicting', async () => {
    const rt = await createLoRA({
      backend: createReferenceBackend(),
      maxLoras: 2,
      maxLoraRank: 8,
      maxCpuLoras: 8,
      maxCpuLoraBytes: 3 * RANK2,
    });
    const weight = tf.tensor2d(new Float32Array(O * H).fill(0.5), [O, H]);
    const layer = new LoRALinear(rt, { module: 'm', weight });
    try {
      expect(adapterBytes(adapter('x', 1))).toBe((H + O) * 4); // not padded to maxLoraRank 8
      for (const id of ['a', 'b', 'c']) rt.adapters.register(adapter(id));
      expect(rt.adapters.hostMemory).toBe(3 * RANK2);
      rt.adapters.register(adapter('d')); // evicts a, the least recently used
      expect(rt.adapters.registered).toEqual(['b', 'c', 'd']);
      rt.adapters.pin('b');
      rt.adapters.setBatch(['c'], [1]);
      rt.adapters.register(adapter('e')); // b is pinned and c in the batch: d goes
      expect(rt.adapters.registered).toEqual(['b', 'c', 'e']);
      // A rank-4 adapter needs two rank-2 adapters' room; only e can go: refused, nothing evicted.
      const before = [rt.adapters.registered, rt.adapters.hostMemory];
      expect(codeOf(() => rt.adapters.register(adapter('f', 4)))).toBe('E_CAPACITY');
      expect(() => rt.adapters.register(adapter('f', 4))).toThrow(/holds 3 adapters and 216 bytes/);
      expect([rt.adapters.registered, rt.adapters.hostMemory]).toEqual(before);
      // Larger than the whole cache: refused outright.
      expect(() => rt.adapters.register(adapter('huge', 8))).toThrow(
        /E_CAPACITY.*more than the whole host cache \(maxCpuLoraBytes = 216\)/,
      );
      rt.adapters.setBatch([], []);
      rt.adapters.register(adapter('f', 4)); // now c and e can go (b stays pinned)
      expect(rt.adapters.registered).toEqual(['b', 'f']);
      expect(rt.adapters.hostMemory).toBe(RANK2 + 2 * RANK2);
      rt.adapters.unpin('b');
      rt.adapters.remove('b');
      expect(rt.adapters.hostMemory).toBe(2 * RANK2);
    } finally {
      layer.dispose();
      weight.dispose();
      rt.dispose();
    }
  });

  it('is checked like the other limits', async () => {
    await expect(createLoRA({ backend: createReferenceBackend(), maxCpuLoraBytes: 0 })).rejects.toThrow(
      /E_CONFIG.*maxCpuLoraBytes must be an integer from 1/,
    );
  });
});
