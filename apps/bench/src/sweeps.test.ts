import { FIRST_PARTY_BACKENDS } from '@lora/core';
import { describe, expect, it } from 'vitest';
import { probeNodeBackends } from './backends.js';
import type { GridPoint, GridResult } from './grid.js';
import type { Sample } from './measure.js';
import { nodeGridSteps, sweepTargets } from './sweeps.js';

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
