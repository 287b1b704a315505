import { describe, expect, it } from 'vitest';
import { TINY_SHAPES } from './kernels.js';
import { runVariantBench, variantTable } from './variants.js';

describe('variants: per-request strength against plain LoRA', () => {
  it('measures both on the same data, interleaved, and reports a cost or "within noise", never a speed-up', async () => {
    const results = await runVariantBench({ shapes: TINY_SHAPES.slice(0, 1), engines: ['js'], rounds: 5 });
    expect(results).toHaveLength(1);
    const [r] = results;
    expect(r?.plain.times).toHaveLength(5);
    expect(r?.variantSample.times).toHaveLength(5);
    expect(r?.spread.low).toBeLessThanOrEqual(r?.spread.high as number);
    expect(r?.withinNoise).toBe((r?.spread.low as number) <= 0);
    const table = variantTable(results);
    expect(table).toMatch(
      /\| per-request strength \| cpu \(engine js\) \| decode: T 8, 4 adapters, H 64, r 8 \| \d+\.\d{3} \| \d+\.\d{3} \| (within noise|\d+\.\d %) \[/,
    );
    if (r?.withinNoise === false) expect(r.cost).toBeGreaterThan(0);
  });
});
