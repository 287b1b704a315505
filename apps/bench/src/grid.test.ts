import './backends.js';
import { describe, expect, it } from 'vitest';
import { GRIDS, gridShapes, loraBytes, loraFlops, runGrid } from './grid.js';
import { gridSvg, gridTable, rooflineOf, rooflineSvgOf } from './report-grid.js';

describe('kernel grid', () => {
  it('spans tokens × adapters × ranks, leaving out more adapters than tokens', () => {
    const full = gridShapes(GRIDS.full);
    // T = 1: one adapter; T = 8: 1, 4, 8 adapters; every larger T: all four; × 3 ranks.
    expect(full).toHaveLength(3 * (1 + 3 + 4 * 4));
    expect(full.every((s) => s.numAdapters <= s.numTokens && s.hidden === 4096 && s.out === 4096)).toBe(true);
    expect(new Set(full.map((s) => s.rank))).toEqual(new Set([8, 16, 64]));
    expect(full.find((s) => s.numTokens === 2048)?.layout).toBe('segments');
    expect(full.find((s) => s.numTokens === 32)?.layout).toBe('interleaved');
  });

  it('counts the bytes and flops a LoRA call cannot avoid', () => {
    const s = { name: 's', numTokens: 2, numAdapters: 1, hidden: 3, out: 5, rank: 4, layout: 'interleaved' as const };
    // A 4×3 + B 5×4 + x 2×3 + y in and out 2×2×5 floats.
    expect(loraBytes(s)).toBe(4 * (12 + 20 + 6 + 20));
    expect(loraFlops(s)).toBe(2 * 2 * 4 * (3 + 5));
  });

  it('measures every point on the cpu backend and reports it as a table, a heatmap and a roofline', async () => {
    const shapes = gridShapes(GRIDS.tiny);
    const points: string[] = [];
    // A naive limit that the largest tiny point exceeds: skipped contenders must be reported, not fail.
    const limit = 4 * 40 * 8 * (64 + 48) - 1;
    const g = await runGrid({ id: 'cpu', label: 'cpu (engine js)', backend: 'cpu', backendOptions: { engine: 'js' } }, shapes, {
      rounds: 1,
      budgetMs: 20,
      naiveLimitBytes: limit,
      onPoint: (l) => points.push(l),
    });
    expect(g.points.map((p) => p.shape.name)).toEqual(shapes.map((s) => s.name));
    expect(points).toHaveLength(shapes.length);
    for (const p of g.points) {
      expect(p.lora.median).toBeGreaterThan(0);
      expect(p.loopOverLoRA).toBeGreaterThan(0);
      expect(p.loraShareOfBase).toBeGreaterThan(0);
      expect(p.naive === undefined).toBe(p.shape.numTokens === 40 && p.shape.rank === 8);
      // An op's floor (tf.add(y, y)) beside the T = 1 points only.
      expect(p.floor === undefined).toBe(p.shape.numTokens !== 1);
    }
    // The base matmul depends on T only: measured once per token count.
    const byT = g.points.filter((p) => p.shape.numTokens === 8);
    expect(new Set(byT.map((p) => p.base))).toHaveProperty('size', 1);
    expect(g.notes).toEqual([expect.stringMatching(/naive composition skipped/)]);

    const table = gridTable(g, 10);
    // Header, separator, one row per point.
    expect(table.split('\n').filter((l) => l.startsWith('| ')).length).toBe(shapes.length + 2);
    expect(table).toMatch(/of copy rate/);
    expect(gridSvg(g).match(/<rect /g)?.length).toBeGreaterThan(shapes.length);
    const roof = rooflineOf(g, 10);
    expect(roof.points).toHaveLength(shapes.length);
    expect(roof.peakGflops).toBeGreaterThan(0);
    expect(rooflineSvgOf(g, 10).match(/<circle /g)).toHaveLength(shapes.length);
  }, 60_000);
});
