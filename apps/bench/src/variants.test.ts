import { DEMO_PRESETS } from '@lora/llama/demo';
import { describe, expect, it } from 'vitest';
import { TINY_SHAPES } from './kernels.js';
import { prefixReuseTable, runPrefixReuseBench } from './prefix-reuse.js';
import { runVariantBench, variantTable } from './variants.js';

describe('variants: per-request strength, activated LoRA, mixes and DoRA against plain LoRA', () => {
  it('measures each pair on the same data, interleaved, and reports a cost or "within noise", never a speed-up', async () => {
    const results = await runVariantBench({ shapes: TINY_SHAPES.slice(0, 1), engines: ['js'], rounds: 5 });
    expect(results.map((r) => r.variant)).toEqual([
      'per-request strength',
      'activated LoRA (from mid-chunk)',
      'mix of two adapters',
      'DoRA (layer forward)',
    ]);
    const table = variantTable(results);
    for (const r of results) {
      expect(r.plain.times).toHaveLength(5);
      expect(r.variantSample.times).toHaveLength(5);
      expect(r.spread.low).toBeLessThanOrEqual(r.spread.high);
      expect(r.withinNoise).toBe(r.spread.low <= 0 && r.spread.high >= 0);
      // Outside the noise the median lies with its quartiles on one side of zero: a cost or a saving, never a sign flip.
      if (!r.withinNoise) expect(Math.sign(r.cost)).toBe(Math.sign(r.spread.low));
      expect(table).toContain(`| ${r.variant} | cpu (engine js) | decode: T 8, 4 adapters, H 64, r 8 |`);
    }
    expect(table).toMatch(
      /\| DoRA \(layer forward\) \| cpu \(engine js\) \| [^|]+ \| \d+\.\d{3} \| \d+\.\d{3} \| (within noise|\d+\.\d %) \[/,
    );
  });
});

describe('prefix reuse: an activated LoRA after a cached base prompt', () => {
  it('reuses every whole block before the invocation and reports TTFT with and without the cache, round by round', async () => {
    const r = await runPrefixReuseBench(DEMO_PRESETS.tiny, { prefixTokens: 40, rounds: 2 });
    expect(r).toMatchObject({ prefixTokens: 40, promptTokens: 48, cachedTokens: 32 }); // blocks of 16 ending before 40
    expect(r.mustCost).toBeCloseTo(16 / 48, 10);
    expect(r.spread.low).toBeLessThanOrEqual(r.spread.high);
    expect(prefixReuseTable(r)).toMatch(/\| demo tiny, cpu \| 40 \+ 2 \+ 6 = 48 \| 32 \| \d+\.\d \| \d+\.\d \| \d+\.\d % \[/);
  });
});
