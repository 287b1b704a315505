import { DEMO_PRESETS } from '@lora/llama/demo';
import { describe, expect, it } from 'vitest';
import { runInChromium } from './browser.js';
import { GRIDS, gridShapes } from './grid.js';
import { HEATMAPS } from './heatmap.js';
import { TINY_SHAPES } from './kernels.js';

// The browser page is how webgl gets benchmarked at all: check that it loads, runs each task on both
// backends and hands its results (and progress) back to Node. Times are not checked.
describe('bench tasks in Chromium', () => {
  it('measures webgl and webgpu contenders on tiny shapes', async () => {
    const lines: string[] = [];
    const results = await runInChromium(['webgl', 'webgpu'], { kind: 'contest', shapes: TINY_SHAPES, rounds: 1 }, (l) => lines.push(l));
    expect(results.map((c) => c.backend)).toEqual(['webgl', 'webgpu']);
    for (const c of results) {
      expect(c.error).toBeUndefined();
      expect(c.contest?.map((s) => s.shape.name)).toEqual(['decode', 'prefill']);
      for (const { samples } of c.contest ?? []) {
        expect(Object.keys(samples).sort()).toEqual([`base-${c.backend}`, `loop-${c.backend}`, `lora-${c.backend}`, `naive-${c.backend}`]);
        for (const s of Object.values(samples)) expect(s.median).toBeGreaterThan(0);
      }
    }
    expect(lines).toContain('chromium webgl: prefill');
  }, 180_000);

  it('sweeps the tiny grid and the tiny heatmap on webgl and webgpu', async () => {
    const shapes = gridShapes(GRIDS.tiny);
    const grids = await runInChromium(['webgl', 'webgpu'], { kind: 'grid', shapes, rounds: 1, budgetMs: 50, naiveLimitBytes: 2 ** 30 });
    for (const r of grids) {
      expect(r.error).toBeUndefined();
      expect(r.grid?.points.map((p) => p.shape.name)).toEqual(shapes.map((s) => s.name));
      expect(r.grid?.programsCompiled).toBeGreaterThan(0);
    }
    const task = {
      kind: 'heatmap' as const,
      preset: DEMO_PRESETS.tiny,
      axes: HEATMAPS.tiny,
      rounds: 1,
      adapters: 2,
      rank: 4,
      kvLimitBytes: 2 ** 30,
    };
    for (const r of await runInChromium(['webgl', 'webgpu'], task)) {
      expect(r.error).toBeUndefined();
      expect(r.heatmap?.cells).toHaveLength(4);
      for (const c of r.heatmap?.cells ?? []) expect(c.loraMs > 0 && c.baseMs > 0).toBe(true);
    }
  }, 300_000);
});
