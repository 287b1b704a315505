import { FIRST_PARTY_BACKENDS } from '@lora/core';
import { describe, expect, it } from 'vitest';
import { probeNodeBackends } from './backends.js';
import type { GridPoint, GridResult } from './grid.js';
import type { HeatmapResult } from './heatmap.js';
import type { Sample } from './measure.js';
import { nodeGridSteps, sweepTargets, worstCellOverInherent } from './sweeps.js';

const sample = (median: number): Sample => ({ id: 's', label: 's', tfBackend: 'cpu', times: [median], median, min: median, max: median });
const point = (naiveOverLoRA: number | undefined, loopOverLoRA: number): GridPoint => ({
  shape: { name: 'p', numTokens: 8, numAdapters: 1, hidden: 4, out: 4, rank: 2, layout: 'interleaved' },
  lora: sample(1),
  loop: sample(loopOverLoRA),
  base: sample(10),
  naiveOverLoRA,
  loopOverLoRA,
  loraShareOfBase: 0.1,
  bytes: 1,
  flops: 1,
});
const gridShape = (numTokens: number) => ({ ...point(1, 1).shape, numTokens });
const grid = (backend: string, points: GridPoint[], programsTotal?: number, costModel = false): GridResult => ({
  backend,
  costModel,
  compilesPrograms: programsTotal !== undefined,
  programsCompiled: programsTotal ?? 0,
  programsTotal: programsTotal ?? 0,
  points,
  notes: [],
});

describe('grid targets', () => {
  it('take the worst point per backend, bound GPU programs by the token buckets, and leave the simulator out', () => {
    const targets = sweepTargets({
      grids: [
        grid('cpu (engine wasm)', [point(40, 9), point(undefined, 0.8)]),
        grid('webgl (chromium)', [point(6, 3)], 8),
        grid('webgpu (node)', [point(6, 3)], 12),
        // Left out for what it declares (a cost model), whatever its name.
        grid('a simulator', [point(0.1, 0.1)], 0, true),
      ],
      heatmaps: [],
    });
    expect(targets.map((t) => [t.name, t.value, t.met])).toEqual([
      ['cpu (engine wasm): worst point vs naive composition', 40, true],
      ['cpu (engine wasm): worst point vs per-adapter loop', 0.8, false],
      ['webgl (chromium): worst point vs naive composition', 6, true],
      ['webgl (chromium): worst point vs per-adapter loop', 3, true],
      // Token buckets 16 … 4096: 9 programs at most.
      ['webgl (chromium): programs compiled (whole run)', 8, true],
      ['webgpu (node): worst point vs naive composition', 6, true],
      ['webgpu (node): worst point vs per-adapter loop', 3, true],
      ['webgpu (node): programs compiled (whole run)', 12, false],
    ]);
  });
});

describe('the T = 1 fixed-cost target (issue #17)', () => {
  const at = (numTokens: number, ms: number, bytes: number): GridPoint => ({
    ...point(2, 2),
    shape: { ...point(2, 2).shape, numTokens },
    lora: sample(ms),
    bytes,
  });
  it('is the worst T = 1 point: its time minus its bytes at the copy rate, at most 10 µs; other token counts do not count', () => {
    // 113 kB at 11.3 GB/s take 10 µs: 0.019 ms leaves 9 µs, 0.0215 ms leaves 11.5 µs.
    const cpu = grid('cpu (engine wasm)', [at(1, 0.019, 113_000), at(8, 5, 113_000)]);
    const one = sweepTargets({ grids: [cpu], heatmaps: [], cpuGrid: cpu, copyGBps: 11.3 }).at(-1);
    expect(one).toMatchObject({ name: 'cpu (engine wasm): one call at T = 1, beyond its bytes at the copy rate', unit: 'µs', met: true });
    expect(one?.value).toBeCloseTo(9, 6);
    const slow = grid('cpu (engine wasm)', [at(1, 0.019, 113_000), at(1, 0.0215, 113_000)]);
    const worst = sweepTargets({ grids: [slow], heatmaps: [], cpuGrid: slow, copyGBps: 11.3 }).at(-1);
    expect(worst?.value).toBeCloseTo(11.5, 6);
    expect(worst?.met).toBe(false);
    expect(worst?.shape).toBe('grid, worst of 2 T = 1 points');
    // The floor beside it: tf.add(y, y) at the worst point, beyond y twice and its output (3 · 4 · O bytes).
    const O = point(2, 2).shape.out;
    const floored = grid('cpu (engine wasm)', [{ ...at(1, 0.0215, 113_000), floor: sample(0.011 + (12 * O) / 11.3e9 / 1e-3) }]);
    const withFloor = sweepTargets({ grids: [floored], heatmaps: [], cpuGrid: floored, copyGBps: 11.3 }).at(-1);
    expect(withFloor?.shape).toBe('grid, worst of 1 T = 1 points; tf.add(y, y) there: 11.0 µs beyond its bytes');
    // Without a copy rate (no grid on cpu) there is no such target.
    expect(sweepTargets({ grids: [cpu], heatmaps: [] }).some((t) => t.unit === 'µs')).toBe(false);
  });
});

describe('the heatmap target (issue #17): slowdown ≤ 1.5 × must + 1 point', () => {
  const cell = (length: number, slowdown: number, must: number, withinNoise = false) => ({
    length,
    concurrency: 4,
    loraMs: 1 + slowdown,
    baseMs: 1,
    slowdown,
    spread: { low: withinNoise ? -0.01 : slowdown / 2, high: slowdown * 2, rounds: 5 },
    withinNoise,
    inherent: { bytes: must, flops: must / 2 },
  });
  const heatmap = (cells: ReturnType<typeof cell>[]): HeatmapResult => ({
    backend: 'cpu (engine wasm)',
    preset: 'smollm2',
    adapters: 8,
    rank: 32,
    axes: { lengths: cells.map((c) => c.length), concurrency: [4] },
    cells,
    skipped: [],
  });
  it('reports the worst cell against its own bound; within noise counts as zero; cells without a spread (priced) are not read', () => {
    // Bounds: 1.5 × 0.1 + 0.01 = 0.16 and 1.5 × 0.02 + 0.01 = 0.04.
    const h = heatmap([cell(128, 0.08, 0.1), cell(512, 0.05, 0.02), cell(1024, 0.9, 0.02, true)]);
    expect(worstCellOverInherent(h)?.ratio).toBeCloseTo(0.05 / 0.04, 9);
    expect(worstCellOverInherent(h)?.where).toBe('input 512 × 4');
    const target = sweepTargets({ grids: [], heatmaps: [h], cpuHeatmap: h }).at(-1);
    expect(target).toMatchObject({ shape: 'model "smollm2", worst of 3 cells (input 512 × 4)', goal: '≤ 1×', met: false });
    const fine = heatmap([cell(128, 0.08, 0.1), cell(1024, 0.9, 0.02, true)]);
    expect(sweepTargets({ grids: [], heatmaps: [fine], cpuHeatmap: fine }).at(-1)?.met).toBe(true);
    const { spread: _, ...priced } = cell(128, 5, 0.01);
    expect(worstCellOverInherent({ ...h, cells: [priced] })).toBeUndefined();
  });
});

describe('the backends a grid sweeps in Node', () => {
  it('are every first-party backend that starts here, sized by what it declares; the others say why not', async () => {
    const probed = await probeNodeBackends();
    const byName = Object.fromEntries(probed.map((b) => [b.name, b]));
    expect(Object.keys(byName).sort()).toEqual(Object.keys(FIRST_PARTY_BACKENDS).sort());
    expect(byName.cpu?.kind).toBe('host');
    expect(byName['tpu-sim']?.kind).toBe('cost-model');
    expect(byName.webgl?.problem).toMatch(/browser/);
    // webgpu starts where Dawn finds a Vulkan driver; either way the probe says which.
    const webgpu = byName.webgpu;
    expect(webgpu?.kind === 'gpu' || typeof webgpu?.problem === 'string').toBe(true);
    const grid = { cpu: [gridShape(1), gridShape(2)], gpu: [gridShape(3)], sim: [gridShape(4), gridShape(5), gridShape(6)] };
    expect(nodeGridSteps(grid, probed)).toBe(2 + 3 + (webgpu?.kind === 'gpu' ? 1 : 0));
  });
});
