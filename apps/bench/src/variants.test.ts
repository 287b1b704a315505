import { describe, expect, it } from 'vitest';
import { TINY_SHAPES } from './kernels.js';
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
