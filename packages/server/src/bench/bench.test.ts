import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cellsFile } from './cells-file.js';
import { heatmapSvg, markdownTable } from './report.js';
import { runServeBench, serveBenchSteps, TINY_SERVE_BENCH } from './serve-bench.js';
import { percentile } from './stats.js';

describe('serve benchmark', () => {
  it('percentile interpolates between ranks like numpy', () => {
    expect(percentile([1, 2, 3, 4], 50)).toBe(2.5);
    expect(percentile([5], 99)).toBe(5);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99)).toBeCloseTo(9.91);
    expect(percentile([], 50)).toBeNaN();
  });

  it('a slowdown whose range reaches 0 is "within noise" in the table and grey in the heatmap, never a negative figure', () => {
    const axes = { inputLengths: [128], concurrencies: [1, 4] };
    const slowdown = [
      { inputLength: 128, concurrency: 1, slowdown: 0.12, low: 0.08, high: 0.15, withinNoise: false, itlSlowdown: 0.1 },
      { inputLength: 128, concurrency: 4, slowdown: -0.03, low: -0.07, high: 0.02, withinNoise: true, itlSlowdown: 0 },
    ];
    const table = markdownTable({ title: 't', cells: [], slowdown, overhead: undefined, ...axes });
    expect(table).toContain('| 128 | +12.0 % [+8.0, +15.0] | within noise [-7.0, +2.0] |');
    const svg = heatmapSvg({ title: 't', slowdown, ...axes });
    expect(svg).toContain('>+12.0 %</text>');
    expect(svg).toContain('fill="#ddd"');
    expect(svg).toContain('>noise</text>');
    expect(svg).not.toContain('-3.0 %');
  });

  it('the quick setting runs through HTTP and reports every cell, the slowdown grid and the server overhead', async () => {
    const lines: string[] = [];
    const dir = await mkdtemp(join(tmpdir(), 'serve-cells-'));
    const file = join(dir, 'out', 'serve-cells.jsonl');
    const options = TINY_SERVE_BENCH;
    const r = await runServeBench({ ...options, onProgress: (l) => lines.push(l), onCell: cellsFile(file) });
    expect(lines).toHaveLength(serveBenchSteps(options));
    const { cells, slowdown, overhead, config } = r.json;
    // Every measurement (each mode of each repeat) was written as it ended, one JSON line each; the report's cells pool them.
    const streamed = (await readFile(file, 'utf8'))
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(streamed).toHaveLength(2 * cells.length);
    for (const c of cells) {
      const mine = streamed.filter((m) => m.inputLength === c.inputLength && m.concurrency === c.concurrency && m.mode === c.mode);
      expect(mine.map((m) => m.repeat).sort()).toEqual([0, 1]);
      expect(mine.reduce((n, m) => n + m.requests, 0)).toBe(c.requests);
    }
    await rm(dir, { recursive: true });
    expect(config).toMatchObject({ adapters: 8, outputLength: 3, inputLengths: [8, 24], concurrencies: [1, 3] });
    expect(cells).toHaveLength(2 * 2 * 2);
    for (const c of cells) {
      // Two repeats of one wave (at least 4 requests) each.
      expect(c.repeats).toBe(2);
      expect(c.requests).toBe(2 * Math.max(4, c.concurrency));
      expect(c.failed).toBe(0);
      expect(c.tokensPerSecond).toBeGreaterThan(0);
      expect(c.ttftP50Ms).toBeGreaterThan(0);
      expect(c.ttftP99Ms).toBeGreaterThanOrEqual(c.ttftP50Ms);
      expect(c.itlP99Ms).toBeGreaterThanOrEqual(c.itlP50Ms);
    }
    expect(slowdown).toHaveLength(4);
    for (const s of slowdown) {
      expect(Number.isFinite(s.slowdown)).toBe(true);
      expect(s.low).toBeLessThanOrEqual(s.slowdown);
      expect(s.high).toBeGreaterThanOrEqual(s.slowdown);
      expect(s.withinNoise).toBe(s.low <= 0);
    }
    expect(overhead).toMatchObject({ concurrency: 3, inputLength: 8, goal: 0.05 });
    expect(overhead.httpTokensPerSecond).toBeGreaterThan(0);
    expect(overhead.engineTokensPerSecond).toBeGreaterThan(0);
    expect(r.table).toContain('| 24 | 3 | 8 adapters | 8 | 0 |');
    // Each slowdown cell: the median and its range, or "within noise" and the range — never a bare negative figure.
    const cell = String.raw`(?:[+]\d+\.\d %|within noise) \[[+-]\d+\.\d, [+-]\d+\.\d\]`;
    expect(r.table).toMatch(new RegExp(String.raw`\| 8 \| ${cell} \| ${cell} \|`));
    expect(r.table).toMatch(/Server overhead at concurrency 3, input 8/);
    expect(r.svg.startsWith('<svg')).toBe(true);
    expect(r.svg.match(/<rect /g)).toHaveLength(1 + 4);
    expect(lines.some((l) => l.includes('8 adapters'))).toBe(true);
  }, 60_000);
});
