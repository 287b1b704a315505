import { describe, expect, it } from 'vitest';
import { runInChromium } from './browser.js';
import { TINY_SHAPES } from './kernels.js';

// The browser contest is how webgl gets benchmarked at all: check that the page loads, builds every
// contender on both backends and hands its samples back to Node (times are not checked).
describe('kernel contest in Chromium', () => {
  it('measures webgl and webgpu contenders on tiny shapes', async () => {
    const contests = await runInChromium(['webgl', 'webgpu'], TINY_SHAPES, 1);
    expect(contests.map((c) => c.backend)).toEqual(['webgl', 'webgpu']);
    for (const c of contests) {
      expect(c.error).toBeUndefined();
      expect(c.shapes.map((s) => s.shape.name)).toEqual(['decode', 'prefill']);
      for (const { samples } of c.shapes) {
        expect(Object.keys(samples).sort()).toEqual([`base-${c.backend}`, `loop-${c.backend}`, `lora-${c.backend}`, `naive-${c.backend}`]);
        for (const s of Object.values(samples)) expect(s.median).toBeGreaterThan(0);
      }
    }
  }, 180_000);
});
