import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLoRA, type LoRARuntime } from '../create.js';
import { LoRALinear } from '../layers/linear.js';
import { createReferenceBackend } from '../reference-backend.js';
import { codeOf } from '../test-support.js';
import { type AdapterModuleWeights, createAdapter } from './adapter.js';

tf.env().set('IS_TEST', true);

const [H, O, r] = [5, 4, 2];
const W = Float32Array.from({ length: O * H }, (_, i) => Math.sin(i + 1));
const X = Float32Array.from({ length: 4 * H }, (_, i) => Math.cos(i * 0.3));

function module(k: number, dora = false): AdapterModuleWeights {
  const a = Float32Array.from({ length: r * H }, (_, i) => Math.sin(i * 0.7 + k));
  const b = Float32Array.from({ length: O * r }, (_, i) => Math.cos(i * 0.9 + k));
  const m = { name: 'm', kind: 'linear' as const, rank: r, scale: 1.5, a, b, inFeatures: H, outFeatures: O };
  return dora ? { ...m, magnitude: Float32Array.from({ length: O }, () => 1.2) } : m;
}

describe('AdapterManager.setBatch with adapter mixes', () => {
  let rt: LoRARuntime;
  let owned: tf.Tensor[];
  let layer: LoRALinear;
  beforeEach(async () => {
    rt = await createLoRA({ backend: createReferenceBackend(), maxLoras: 3, maxLoraRank: 4, maxCpuLoras: 8 });
    owned = [tf.tensor2d(W, [O, H]), tf.tensor2d(X, [4, H])];
    layer = new LoRALinear(rt, { module: 'm', weight: owned[0] as tf.Tensor2D });
    for (const [k, id] of ['a', 'b', 'c', 'd'].entries()) rt.adapters.register(createAdapter(id, [module(k)]));
    rt.adapters.register(createAdapter('dora', [module(9, true)]));
  });
  afterEach(() => {
    rt.dispose();
    tf.dispose(owned);
  });
  const forward = async () => {
    const out = layer.forward(owned[1] as tf.Tensor2D);
    const data = (await out.data()) as Float32Array;
    out.dispose();
    return data;
  };

  it('a mix adds each adapter times its weight (and the request strength), in one batch with plain and base requests', async () => {
    rt.adapters.setBatch(
      [
        [
          { id: 'a', weight: 0.7 },
          { id: 'b', weight: 0.5 },
        ],
        'c',
        null,
      ],
      [2, 1, 1],
      [2, 1, 1],
    );
    const meta = rt.punica.meta;
    const slot = (id: string) => rt.adapters.slotOf(id);
    expect(Array.from(meta.tokenLoraIndices)).toEqual([slot('a'), slot('a'), slot('c'), -1]);
    expect(Array.from(meta.tokenScales ?? [])).toEqual([1.4, 1.4, 1, 1].map(Math.fround));
    expect(meta.mixLanes).toHaveLength(1);
    expect(Array.from(meta.mixLanes[0]?.tokenLoraIndices ?? [])).toEqual([slot('b'), slot('b'), -1, -1]);
    expect(Array.from(meta.mixLanes[0]?.sampler.tokenLoraIndices ?? [])).toEqual([slot('b'), -1, -1]);
    const mixed = await forward();
    // Each adapter alone at strength 1, and the base, on the same rows.
    const alone = async (id: string | null) => {
      rt.adapters.setBatch([id], [4]);
      return forward();
    };
    const [base, a, b, c] = [await alone(null), await alone('a'), await alone('b'), await alone('c')];
    for (let i = 0; i < 2 * O; i++) {
      const want = (base[i] as number) + 1.4 * ((a[i] as number) - (base[i] as number)) + 1.0 * ((b[i] as number) - (base[i] as number));
      expect(mixed[i]).toBeCloseTo(want, 5);
    }
    // The plain and base rows are what they are alone, bit for bit.
    expect(Array.from(mixed.subarray(2 * O, 3 * O))).toEqual(Array.from(c.subarray(2 * O, 3 * O)));
    expect(Array.from(mixed.subarray(3 * O))).toEqual(Array.from(base.subarray(3 * O)));
  });

  it('a one-adapter mix is that adapter at its weight; without mixes the batch has no lanes', () => {
    rt.adapters.setBatch([[{ id: 'a', weight: 0.25 }], 'b'], [1, 1]);
    expect(rt.punica.meta.mixLanes).toHaveLength(0);
    expect(Array.from(rt.punica.meta.tokenScales ?? [])).toEqual([0.25, 1]);
    rt.adapters.setBatch(['a', 'b'], [1, 1]);
    expect(rt.punica.meta.tokenScales).toBeUndefined();
  });

  it('refuses bad mixes with a code naming the entry, and changes nothing', () => {
    rt.adapters.setBatch(['a'], [1]);
    const [slots, batch, meta] = [rt.adapters.slots, [...rt.adapters.batch], rt.punica.meta];
    const refused: [unknown, string, RegExp][] = [
      [[], 'E_SHAPE', /requestAdapterIds\[0\] is an empty mix/],
      [
        [
          { id: 'a', weight: 1 },
          { id: 'a', weight: 2 },
        ],
        'E_CONFIG',
        /names adapter "a" twice/,
      ],
      [[{ id: 'a', weight: Number.NaN }], 'E_CONFIG', /requestAdapterIds\[0\]\[0\]\.weight/],
      [[{ id: 'nope', weight: 1 }], 'E_NOT_FOUND', /"nope" is not registered/],
      [[{ id: 7, weight: 1 }], 'E_SHAPE', /\[0\]\.id must be an adapter id/],
      [
        [
          { id: 'a', weight: 1 },
          { id: 'dora', weight: 1 },
        ],
        'E_UNSUPPORTED',
        /adapter "dora" is DoRA/,
      ],
      [['a', 'b', 'c', 'd'].map((id) => ({ id, weight: 1 })), 'E_CAPACITY', /mixes more than maxLoras = 3/],
      [{ id: 'a' }, 'E_SHAPE', /must be an adapter id, null or a mix/],
    ];
    for (const [entry, code, message] of refused) {
      expect(
        codeOf(() => rt.adapters.setBatch([entry as never], [1])),
        String(message),
      ).toBe(code);
      expect(() => rt.adapters.setBatch([entry as never], [1])).toThrow(message);
    }
    // Four distinct adapters across a mix and a plain request do not fit three slots.
    const wide = [
      { id: 'a', weight: 1 },
      { id: 'b', weight: 1 },
      { id: 'c', weight: 1 },
    ];
    expect(codeOf(() => rt.adapters.setBatch([wide, 'd'], [1, 1]))).toBe('E_CAPACITY');
    expect(rt.adapters.slots).toEqual(slots);
    expect([...rt.adapters.batch]).toEqual(batch);
    expect(rt.punica.meta).toBe(meta);
  });
});
