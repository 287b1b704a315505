import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bucketTokens } from './bucketing.js';
import { LoRAError } from './errors.js';
import { computeMapping, computeMetadata } from './metadata.js';

describe('computeMapping', () => {
  it('groups tokens by slot, stable within a slot, -1 tokens left out', () => {
    const m = computeMapping([2, -1, 0, 2, 0, -1, 2], { maxLoras: 4 });
    expect(Array.from(m.sortedTokenIndices)).toEqual([2, 4, 0, 3, 6]);
    expect(m.segments).toEqual([
      { slot: 0, start: 0, length: 2 },
      { slot: 2, start: 2, length: 3 },
    ]);
    expect(m.activeSlots).toEqual([0, 2]);
    expect(m.numLoRATokens).toBe(5);
    expect(m.noLoRA).toBe(false);
    expect(m.singleLoRA).toBe(false);
    expect(m.numTokens).toBe(7);
    expect(m.tokenBucket).toBe(16);
  });

  it('flags no-LoRA and single-adapter batches', () => {
    expect(computeMapping([-1, -1], { maxLoras: 2 }).noLoRA).toBe(true);
    expect(computeMapping([], { maxLoras: 2 }).noLoRA).toBe(true);
    expect(computeMapping([1, 1, 1], { maxLoras: 2 }).singleLoRA).toBe(true);
    // One adapter but some tokens without LoRA still needs masking: not the single fast path.
    expect(computeMapping([1, -1, 1], { maxLoras: 2 }).singleLoRA).toBe(false);
  });

  it('copies its input so later caller mutation cannot change a batch', () => {
    const idx = new Int32Array([0, 1]);
    const m = computeMapping(idx, { maxLoras: 2 });
    idx[0] = 1;
    expect(m.tokenLoraIndices[0]).toBe(0);
  });

  it('rejects bad slots with E_INDEX naming the position, and oversize batches with E_CAPACITY', () => {
    expect(() => computeMapping([0, 4], { maxLoras: 4 })).toThrow(/tokenLoraIndices\[1\] is 4; expected an integer slot in \[0, 4\)/);
    expect(() => computeMapping([Number.NaN], { maxLoras: 4 })).toThrow(/is NaN/);
    expect(() => computeMapping('0,1' as never, { maxLoras: 4 })).toThrow(LoRAError);
    expect(() => computeMapping([0, 0, 0], { maxLoras: 4, maxNumTokens: 2 })).toThrow(/E_CAPACITY/);
  });

  it('is a permutation of the LoRA tokens whose segments match their slots (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 9 }), fc.array(fc.integer({ min: -1, max: 8 }), { maxLength: 300 }), (maxLoras, raw) => {
        const idx = raw.map((v) => Math.min(v, maxLoras - 1));
        const m = computeMapping(idx, { maxLoras });
        const lora = idx.map((s, t) => [s, t] as const).filter(([s]) => s >= 0);
        expect(m.numLoRATokens).toBe(lora.length);
        expect([...m.sortedTokenIndices].sort((a, b) => a - b)).toEqual(lora.map(([, t]) => t));
        let covered = 0;
        for (const seg of m.segments) {
          expect(seg.start).toBe(covered);
          const tokens = [...m.sortedTokenIndices.subarray(seg.start, seg.start + seg.length)];
          expect(tokens.every((t) => idx[t] === seg.slot)).toBe(true);
          expect(tokens).toEqual([...tokens].sort((a, b) => a - b));
          covered += seg.length;
        }
        expect(covered).toBe(lora.length);
        expect(m.activeSlots).toEqual([...new Set(lora.map(([s]) => s))].sort((a, b) => a - b));
        expect(m.tokenBucket).toBe(bucketTokens(idx.length));
      }),
    );
  });
});

describe('computeMetadata', () => {
  it('defaults the sampler mapping to the token mapping', () => {
    const m = computeMetadata({ tokenLoraIndices: [0, 1] }, { maxLoras: 2 });
    expect(m.sampler.numTokens).toBe(2);
    expect(m.sampler.activeSlots).toEqual([0, 1]);
  });

  it('computes a separate sampler mapping for logits', () => {
    const m = computeMetadata({ tokenLoraIndices: [0, 0, 0, 1, 1], samplerLoraIndices: [0, 1] }, { maxLoras: 2, version: 3 });
    expect(m.numTokens).toBe(5);
    expect(m.sampler.numTokens).toBe(2);
    expect(m.version).toBe(3);
  });
});

describe('per-row strengths (tokenLoraScales, samplerLoraScales)', () => {
  const opts = { maxLoras: 2 };

  it('keeps them as float32, takes strength-0 rows out of the mapping, and drops an all-1 list', () => {
    const m = computeMetadata({ tokenLoraIndices: [0, 1, 1, 0], tokenLoraScales: [0.4, 0, 1, -2] }, opts);
    expect(Array.from(m.tokenScales ?? [])).toEqual([Math.fround(0.4), 0, 1, -2]);
    expect(Array.from(m.tokenLoraIndices)).toEqual([0, -1, 1, 0]);
    expect(Array.from(m.sortedTokenIndices)).toEqual([0, 3, 2]);
    expect(m.sampler.tokenScales).toBe(m.tokenScales);
    expect(computeMetadata({ tokenLoraIndices: [0, 1], tokenLoraScales: [1, 1] }, opts).tokenScales).toBeUndefined();
    expect(computeMetadata({ tokenLoraIndices: [0, 1] }, opts).tokenScales).toBeUndefined();
    const off = computeMetadata({ tokenLoraIndices: [0, 1], tokenLoraScales: new Float32Array(2) }, opts);
    expect(off.noLoRA).toBe(true);
  });

  it('gives the sampler rows their own strengths', () => {
    const m = computeMetadata(
      { tokenLoraIndices: [0, 0, 1], tokenLoraScales: [0.5, 0.5, 0], samplerLoraIndices: [0, 1], samplerLoraScales: [0.5, 0] },
      opts,
    );
    expect(Array.from(m.sampler.tokenLoraIndices)).toEqual([0, -1]);
    expect(Array.from(m.sampler.tokenScales ?? [])).toEqual([0.5, 0]);
  });

  it.each([
    [{ tokenLoraIndices: [0, 1], tokenLoraScales: [1] }, 'E_SHAPE', /tokenLoraScales has 1 strengths; tokenLoraIndices has 2 rows/],
    [
      { tokenLoraIndices: [0, 1], tokenLoraScales: [1, Number.NaN] },
      'E_CONFIG',
      /tokenLoraScales\[1\] must be a finite float32 number.*got NaN/,
    ],
    [{ tokenLoraIndices: [0], tokenLoraScales: [1e39] }, 'E_CONFIG', /tokenLoraScales\[0\]/],
    [{ tokenLoraIndices: [0], tokenLoraScales: ['1'] }, 'E_CONFIG', /got "1"/],
    [{ tokenLoraIndices: [0], tokenLoraScales: 0.5 }, 'E_SHAPE', /tokenLoraScales must be a Float32Array or number\[\]/],
    [{ tokenLoraIndices: [0], samplerLoraScales: [1] }, 'E_SHAPE', /samplerLoraScales was given without samplerLoraIndices/],
    [{ tokenLoraIndices: [0], tokenLoraScales: [1], samplerLoraIndices: [0] }, 'E_SHAPE', /without samplerLoraScales/],
    [
      { tokenLoraIndices: [0], samplerLoraIndices: [0, 1], samplerLoraScales: [1, 2, 3] },
      'E_SHAPE',
      /samplerLoraScales has more than 2 strengths; samplerLoraIndices has 2 rows/,
    ],
  ])('refuses %j with %s', (given, code, message) => {
    let thrown: unknown;
    try {
      computeMetadata(given as never, opts);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(LoRAError);
    expect((thrown as LoRAError).code).toBe(code);
    expect((thrown as LoRAError).message).toMatch(message);
  });
});
