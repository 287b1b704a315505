import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import fc from 'fast-check';
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

describe('AdapterManager.setBatch: adapter mixes, and where an adapter starts in a request', () => {
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

  it('an adapter object registered without createAdapter keeps its invocation tokens (an activated LoRA stays one)', () => {
    const modules = new Map([['m', module(4)]]);
    rt.adapters.register({ id: 'plain-object', rank: r, modules, invocationTokens: [7, 8] });
    expect(rt.adapters.get('plain-object')?.invocationTokens).toEqual([7, 8]);
    expect(codeOf(() => rt.adapters.register({ id: 'bad', rank: r, modules, invocationTokens: [] }))).toBe('E_CONFIG');
  });

  it('firstAdapterTokens: earlier tokens of the request get the base model; the sampled row only once past the start', () => {
    rt.adapters.setBatch(['a', 'b', 'c'], [3, 2, 1], undefined, [1, 5, 0]);
    const meta = rt.punica.meta;
    const [a, b, c] = ['a', 'b', 'c'].map((id) => rt.adapters.slotOf(id));
    expect(Array.from(meta.tokenLoraIndices)).toEqual([-1, a, a, -1, -1, c]);
    expect(Array.from(meta.sampler.tokenLoraIndices)).toEqual([a, -1, c]);
    expect(b).toBeGreaterThanOrEqual(0); // still activated: its request is in the batch
    for (const [firsts, code] of [
      [[1, 2], 'E_SHAPE'],
      [[-1, 0, 0], 'E_SHAPE'],
      [[0.5, 0, 0], 'E_SHAPE'],
    ] as const) {
      expect(codeOf(() => rt.adapters.setBatch(['a', 'b', 'c'], [3, 2, 1], undefined, firsts as never))).toBe(code);
    }
    expect(rt.punica.meta).toBe(meta);
  });

  it('property: random batches of plain, mixed, weighted and late-starting requests map exactly as specified, or are refused changing nothing', () => {
    const ids = ['a', 'b', 'c', 'd', 'dora', 'ghost'];
    const request = fc.oneof(
      fc.constant(null),
      fc.constantFrom(...ids),
      fc.array(fc.record({ id: fc.constantFrom(...ids), weight: fc.constantFrom(1, 0.5, -2, 0, Number.NaN) }), {
        minLength: 0,
        maxLength: 4,
      }),
    );
    const batch = fc.array(fc.record({ ask: request, count: fc.integer({ min: 1, max: 3 }), first: fc.integer({ min: 0, max: 4 }) }), {
      minLength: 1,
      maxLength: 5,
    });
    fc.assert(
      fc.property(batch, fc.boolean(), fc.boolean(), (reqs, withStrengths, withFirsts) => {
        const strengths = reqs.map((_, i) => [1, 0.25, 3][i % 3] as number);
        const before = { slots: rt.adapters.slots, meta: rt.adapters.batch.size > 0 ? rt.punica.meta : undefined };
        const asks = reqs.map((r) => r.ask);
        const call = () =>
          rt.adapters.setBatch(
            asks as never,
            reqs.map((r) => r.count),
            withStrengths ? strengths : undefined,
            withFirsts ? reqs.map((r) => r.first) : undefined,
          );
        // What the contract says should happen.
        const terms = asks.map((a) => (a === null ? [] : typeof a === 'string' ? [{ id: a, weight: 1 }] : a));
        const bad = asks.some(
          (a) =>
            (Array.isArray(a) && (a.length === 0 || a.length > 3 || new Set(a.map((t) => t.id)).size < a.length)) ||
            (Array.isArray(a) && a.some((t) => t.id === 'dora' || Number.isNaN(t.weight))),
        );
        const unknown = terms.some((t) => t.some((x) => x.id === 'ghost'));
        const distinct = new Set(terms.flatMap((t) => t.map((x) => x.id)));
        let meta: ReturnType<typeof call>;
        try {
          meta = call();
        } catch (err) {
          expect(bad || unknown || distinct.size > 3, `refused: ${(err as Error).message}`).toBe(true);
          expect(rt.adapters.slots).toEqual(before.slots);
          if (before.meta !== undefined) expect(rt.punica.meta).toBe(before.meta);
          return;
        }
        expect(bad || unknown || distinct.size > 3).toBe(false);
        const lanes = [meta, ...meta.mixLanes];
        expect(lanes).toHaveLength(Math.max(1, ...terms.map((t) => t.length)));
        let t = 0;
        reqs.forEach((r, i) => {
          const from = withFirsts ? Math.min(r.first, r.count) : 0;
          lanes.forEach((lane, k) => {
            const term = terms[i]?.[k];
            const f = (term?.weight ?? 1) * (withStrengths ? (strengths[i] as number) : 1);
            for (let j = 0; j < r.count; j++) {
              // A row maps to its k-th adapter once past the start, unless its weight × strength is 0 (the base model).
              const want = term !== undefined && j >= from && f !== 0 ? rt.adapters.slotOf(term.id) : -1;
              expect(lane.tokenLoraIndices[t + j], `request ${i} token ${j} lane ${k}`).toBe(want);
              if (want >= 0) expect(lane.tokenScales?.[t + j] ?? 1).toBeCloseTo(f, 6);
            }
            const sampled = term !== undefined && from < r.count && f !== 0 ? rt.adapters.slotOf(term.id) : -1;
            expect(lane.sampler.tokenLoraIndices[i], `request ${i} sampled row, lane ${k}`).toBe(sampled);
          });
          t += r.count;
        });
      }),
      { numRuns: Number(process.env.LORA_PROPERTY_RUNS ?? 300) },
    );
  });
});
