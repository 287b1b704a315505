import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cellsFile } from './cells-file.js';
import { runServeBench, serveBenchSteps, TINY_SERVE_BENCH } from './serve-bench.js';
import { percentile } from './stats.js';

describe('serve benchmark', () => {
  it('percentile interpolates between ranks like numpy', () => {
    expect(percentile([1, 2, 3, 4], 50)).toBe(2.5);
    expect(percentile([5], 99)).toBe(5);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99)).toBeCloseTo(9.91);
    expect(percentile([], 50)).toBeNaN();
  });

  it('the quick setting runs through HTTP and reports every cell, the slowdown grid and the server overhead', async () => {
    const lines: string[] = [];
    const dir = await mkdtemp(join(tmpdir(), 'serve-cells-'));
    const file = join(dir, 'out', 'serve-cells.jsonl');
    const options = TINY_SERVE_BENCH;
    const r = await runServeBench({ ...options, onProgress: (l) => lines.push(l), onCell: cellsFile(file) });
    expect(lines).toHaveLength(serveBenchSteps(options));
    const { cells, slowdown, overhead, config } = r.json;
    // Every cell was written as it ended: the same results the report holds, one JSON line each.
    const streamed = (await readFile(file, 'utf8'))
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(streamed).toHaveLength(cells.length);
    expect(new Set(streamed.map((c) => JSON.stringify(c)))).toEqual(new Set(cells.map((c) => JSON.stringify(c))));
    await rm(dir, { recursive: true });
    expect(config).toMatchObject({ adapters: 8, outputLength: 3, inputLengths: [8, 24], concurrencies: [1, 3] });
    expect(cells).toHaveLength(2 * 2 * 2);
    for (const c of cells) {
      expect(c.requests).toBe(Math.max(4, c.concurrency));
      expect(c.failed).toBe(0);
      expect(c.tokensPerSecond).toBeGreaterThan(0);
      expect(c.ttftP50Ms).toBeGreaterThan(0);
      expect(c.ttftP99Ms).toBeGreaterThanOrEqual(c.ttftP50Ms);
      expect(c.itlP99Ms).toBeGreaterThanOrEqual(c.itlP50Ms);
    }
    expect(slowdown).toHaveLength(4);
    for (const s of slowdown) expect(Number.isFinite(s.slowdown)).toBe(true);
    expect(overhead).toMatchObject({ concurrency: 3, inputLength: 8, goal: 0.05 });
    expect(overhead.httpTokensPerSecond).toBeGreaterThan(0);
    expect(overhead.engineTokensPerSecond).toBeGreaterThan(0);
    expect(r.table).toContain('| 24 | 3 | 8 adapters | 4 | 0 |');
    expect(r.table).toMatch(/\| 8 \| [+-]\d+\.\d % \| [+-]\d+\.\d % \|/);
    expect(r.table).toMatch(/Server overhead at concurrency 3, input 8/);
    expect(r.svg.startsWith('<svg')).toBe(true);
    expect(r.svg.match(/<rect /g)).toHaveLength(1 + 4);
    expect(lines.some((l) => l.includes('8 adapters'))).toBe(true);
  }, 60_000);
});
