import { Random, type SlotPattern, slotIndices } from '@lora/conformance';
import { type LoRAMapping, reference } from '@lora/core';
import { computeMapping } from '@lora/core/backend';
import { describe, expect, it } from 'vitest';
import { FLAG_NAMES, resolveTpuSimOptions, type TpuSimFlags } from './options.js';
import { TpuSim } from './sim.js';

interface Case {
  name: string;
  T: number;
  H: number;
  slices: number[];
  R: number;
  L: number;
  pattern: SlotPattern;
  offsetStart?: number;
  extra?: number;
}

// Ranks that do and do not fill a lane, groups > 1, single adapters (the no-mask path), -1 tokens.
const CASES: Case[] = [
  { name: 'random slots, 3 slices', T: 37, H: 70, slices: [20, 9, 9], R: 8, L: 5, pattern: 'random' },
  { name: 'single adapter', T: 20, H: 33, slices: [17], R: 16, L: 4, pattern: 'single' },
  { name: 'single with -1, offset', T: 19, H: 12, slices: [5, 6], R: 6, L: 3, pattern: 'single-with-none', offsetStart: 3, extra: 2 },
  { name: 'many slots, several lane groups', T: 40, H: 300, slices: [260], R: 64, L: 9, pattern: 'distinct' },
  { name: 'rank 72 (not a power of two), prefill runs', T: 150, H: 20, slices: [11], R: 72, L: 3, pattern: 'requests' },
  { name: 'rank 260 (wider than a lane tile)', T: 9, H: 20, slices: [7], R: 260, L: 2, pattern: 'random' },
  {
    name: 'H=1300, O=300: several contraction and output blocks, one adapter',
    T: 20,
    H: 1300,
    slices: [300],
    R: 8,
    L: 3,
    pattern: 'single',
  },
  { name: 'H=1300, O=300: several contraction and output blocks, mixed', T: 33, H: 1300, slices: [300], R: 8, L: 3, pattern: 'random' },
];

interface Data {
  c: Case;
  meta: LoRAMapping;
  x: Float32Array;
  a: Float32Array[];
  b: Float32Array[];
  shrunk: Float32Array;
  y: Float32Array;
  width: number;
}

function makeData(c: Case, seed: number): Data {
  const rng = new Random(seed);
  const slots = slotIndices(rng, c.pattern, c.T, c.L);
  const width = (c.offsetStart ?? 0) + c.slices.reduce((s, o) => s + o, 0) + (c.extra ?? 0);
  return {
    c,
    meta: computeMapping(slots, { maxLoras: c.L }),
    x: rng.floats(c.T * c.H),
    a: c.slices.map(() => rng.floats(c.L * c.R * c.H)),
    b: c.slices.map((o) => rng.floats(c.L * o * c.R)),
    shrunk: rng.floats(c.slices.length * c.T * c.R),
    y: rng.floats(c.T * width),
    width,
  };
}

function run(sim: TpuSim, d: Data, addInputs: boolean) {
  const { c, meta } = d;
  const shrink = sim.shrink({ x: d.x, hidden: c.H, loraA: d.a, slots: c.L, rank: c.R, meta, scale: 0.75 });
  const expand = sim.expand({
    y: d.y,
    width: d.width,
    x: d.shrunk,
    loraB: d.b,
    slots: c.L,
    rank: c.R,
    outputSlices: c.slices,
    offsetStart: c.offsetStart ?? 0,
    addInputs,
    meta,
  });
  return { shrink, expand };
}

const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);
const flagsFromMask = (mask: number): Partial<TpuSimFlags> => Object.fromEntries(FLAG_NAMES.map((n, i) => [n, ((mask >> i) & 1) === 1]));

describe('every flag combination computes the same numbers (bit for bit)', () => {
  for (const [ci, c] of CASES.entries()) {
    // Small cases: all 2^8 combinations; the larger ones: 40 random combinations (seeded).
    const exhaustive = c.T * c.H * c.R < 100_000;
    it(`${c.name}: ${exhaustive ? 'all 256' : '40 random'} flag combinations and the einsum equal the first kernel`, () => {
      const d = makeData(c, 100 + ci);
      const base = run(new TpuSim(resolveTpuSimOptions({ preset: 'all-off' })), d, ci % 2 === 0);
      const variants: Array<[string, Record<string, unknown>]> = [['einsum', { preset: 'einsum' }]];
      const rng = new Random(300 + ci);
      const masks = exhaustive ? Array.from({ length: 255 }, (_, i) => i + 1) : Array.from({ length: 40 }, () => rng.int(1, 255));
      for (const mask of [...masks, 255])
        variants.push([JSON.stringify(flagsFromMask(mask)), { preset: 'all-off', flags: flagsFromMask(mask) }]);
      for (const [label, options] of variants) {
        const got = run(new TpuSim(resolveTpuSimOptions(options)), d, ci % 2 === 0);
        expect(bits(got.shrink), `shrink with ${label}`).toEqual(bits(base.shrink));
        expect(bits(got.expand), `expand with ${label}`).toEqual(bits(base.expand));
      }
    }, 30_000);
  }
});

describe('numerics: bf16 operands, f32 accumulation, measured against the float64 reference', () => {
  it('errors are bf16-sized: above float32 level (operands really are rounded) and within 3e-2', () => {
    let worst = 0;
    for (const [ci, c] of CASES.entries()) {
      const d = makeData(c, 200 + ci);
      for (const preset of ['all-off', 'all-on', 'einsum']) {
        const got = run(new TpuSim(resolveTpuSimOptions({ preset })), d, true);
        const common = { numTokens: c.T, rank: c.R, tokenLoraIndices: d.meta.tokenLoraIndices };
        const refShrink = reference.referenceShrink({ ...common, x: d.x, hidden: c.H, loraA: d.a, scale: 0.75 });
        const refExpand = reference.referenceExpand({
          ...common,
          y: d.y,
          width: d.width,
          x: d.shrunk,
          loraB: d.b,
          outputSlices: c.slices,
          offsetStart: c.offsetStart ?? 0,
          addInputs: true,
        });
        worst = Math.max(worst, reference.maxRelativeRowError(got.shrink, refShrink), reference.maxRelativeRowError(got.expand, refExpand));
      }
    }
    // One bf16 rounding per operand: relative error per product ≤ 2·2^-8; random signs average it down.
    expect(worst).toBeGreaterThan(1e-4);
    expect(worst).toBeLessThanOrEqual(3e-2);
  });
});
