import './backends.js';
import { DEMO_PRESETS } from '@lora/llama/demo';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { anotherRound, HEATMAPS, runHeatmap } from './heatmap.js';
import { tpuSimHeatmap } from './heatmap-tpu.js';
import { heatmapCellText, heatmapSvgOf, heatmapTable } from './report-grid.js';

describe('slowdown heatmap', () => {
  it('takes rounds by a budget fixed in advance: ≥ 5, then 20 or a minute of LoRA steps, short cells up to 60 or 2 s', () => {
    const rounds = (stepMs: number) => {
      let r = 0;
      while (anotherRound(r, r * stepMs, 1)) r++;
      return r;
    };
    expect(rounds(15_000)).toBe(5); // a minute is spent by then, but 5 is the floor
    expect(rounds(3_600)).toBe(17); // 2048 × 64 on SmolLM2: 17 × 3.6 s passes the minute
    expect(rounds(400)).toBe(20);
    expect(rounds(40)).toBe(50); // 2 s of 40 ms steps
    expect(rounds(1)).toBe(60);
    expect(anotherRound(6, 0, 7)).toBe(true); // asked-for rounds count too
  });

  it('times a decode forward with and without LoRA per cell, skips cells over the KV limit, leaks nothing', async () => {
    const cpu = { id: 'cpu', label: 'cpu (engine js)', backend: 'cpu', backendOptions: { engine: 'js' } };
    const axes = { lengths: [8, 64], concurrency: [1, 4] };
    // tiny preset: 2 layers × 1 KV head × 16 dims, K and V: 256 bytes per cached token and sequence.
    const kvLimitBytes = 256 * 65 * 1;
    await tf.setBackend('cpu');
    const before = tf.memory().numTensors;
    const cells: string[] = [];
    const h = await runHeatmap(cpu, DEMO_PRESETS.tiny, axes, {
      rounds: 1,
      adapters: 2,
      rank: 4,
      kvLimitBytes,
      onCell: (l) => cells.push(l),
    });
    expect(tf.memory().numTensors).toBe(before);
    expect(cells).toHaveLength(4);
    expect(h.cells.map((c) => `${c.length}x${c.concurrency}`)).toEqual(['8x1', '8x4', '64x1']);
    expect(h.skipped).toEqual([{ length: 64, concurrency: 4, reason: expect.stringMatching(/KV cache .* limit/) }]);
    for (const c of h.cells) {
      expect(c.loraMs).toBeGreaterThan(0);
      // At least 5 interleaved rounds; the spread brackets its own median; noise is flagged, never a result.
      expect(c.spread!.rounds).toBeGreaterThanOrEqual(5);
      expect(c.spread!.low).toBeLessThanOrEqual(c.slowdown);
      expect(c.slowdown).toBeLessThanOrEqual(c.spread!.high);
      expect(c.withinNoise).toBe(c.spread!.low <= 0);
      expect(c.inherent!.bytes).toBeGreaterThan(0);
      expect(c.inherent!.flops).toBeGreaterThan(0);
    }
    const table = heatmapTable(h);
    expect(table).toMatch(/\| 64 +\| (within noise|\d+\.\d %) \[-?\d+\.\d, -?\d+\.\d\] · must \d+\.\d % +\| — /);
    expect(table).not.toMatch(/\| -\d+\.\d %/);
    expect(table).toMatch(/Not measured: 64 × 4/);
    const svg = heatmapSvgOf(h);
    expect(svg.match(/<rect /g)).toHaveLength(1 + 4);
    expect(svg).toContain('—');
    expect(svg.includes('>noise<')).toBe(h.cells.some((c) => c.withinNoise));
  }, 60_000);
});

describe('heatmap cells as the report prints them', () => {
  const cell = { length: 8, concurrency: 1, loraMs: 1.1, baseMs: 1, slowdown: 0.1 };
  it('a clear effect: the slowdown, its interquartile range and what it must cost', () => {
    const text = heatmapCellText({
      ...cell,
      spread: { low: 0.05, high: 0.15, rounds: 5 },
      withinNoise: false,
      inherent: { bytes: 0.02, flops: 0.01 },
    });
    expect(text).toBe('10.0 % [5.0, 15.0] · must 2.0 %');
  });
  it('a range reaching zero (or a negative median) is "within noise", never a speed-up', () => {
    const text = heatmapCellText({ ...cell, slowdown: -0.2, spread: { low: -0.3, high: 0.1, rounds: 5 }, withinNoise: true });
    expect(text).toBe('within noise [-30.0, 10.0]');
    expect(text).not.toMatch(/-20/);
  });
});

describe('tpu-sim cost-model heatmap', () => {
  it('prices every cell; longer inputs dilute LoRA (the base step reads more KV cache)', () => {
    const h = tpuSimHeatmap(HEATMAPS.full, 'all-on');
    expect(h.cells).toHaveLength(HEATMAPS.full.lengths.length * HEATMAPS.full.concurrency.length);
    for (const c of h.cells) {
      expect(c.slowdown).toBeGreaterThan(0);
      expect(c.slowdown).toBeCloseTo(c.loraMs / c.baseMs - 1, 10);
    }
    const at = (length: number, concurrency: number) => h.cells.find((c) => c.length === length && c.concurrency === concurrency)!.slowdown;
    expect(at(8192, 64)).toBeLessThan(at(128, 64));
    expect(heatmapTable(h)).toMatch(/cost model/);
  });
});
