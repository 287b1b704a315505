import { describe, expect, it } from 'vitest';
import { kernelTargets, runKernelBench, TINY_SHAPES } from './kernels.js';
import { kernelTable, targetTable } from './report.js';

// Benchmarks are not timed tests: this only checks that the bench runs end to end on tiny shapes
// and that its contenders compute the same numbers.
describe('kernel bench on tiny shapes', () => {
  it('measures every contender, agrees across them, and reports the targets', async () => {
    const results = await runKernelBench({ shapes: TINY_SHAPES, rounds: 1, budgetMs: 50, slowMs: 2000, wasm: true, base: true, gpu: true });
    expect(results.map((r) => r.shape.name)).toEqual(['decode', 'prefill']);
    for (const r of results) {
      expect(Object.keys(r.samples).sort()).toEqual(['base-cpu', 'base-wasm', 'loop', 'lora', 'lora-wasm', 'naive']);
      expect(r.disagreement).toBeLessThan(1e-5);
      for (const value of Object.values(r.ratios)) expect(Number.isFinite(value) && value > 0).toBe(true);
    }
    const targets = kernelTargets(results);
    expect(targets.map((t) => `${t.shape}: ${t.name}`)).toEqual([
      'decode: engine js vs naive tfjs composition',
      'decode: engine js vs per-adapter loop',
      'decode: engine js: share of wasm base matmul',
      'decode: engine wasm: share of wasm base matmul',
      'decode: engine wasm vs engine js (scalar)',
      'decode: engine wasm: bandwidth / copy rate',
      'prefill: engine js vs naive tfjs composition',
      'prefill: engine js vs per-adapter loop',
      'prefill: engine wasm: share of wasm base matmul',
      'prefill: engine wasm vs engine js (scalar)',
      'decode, H = 64: webgpu (node) vs naive tfjs composition',
      'decode, H = 64: webgpu (node) vs per-adapter loop',
      'decode, H = 64: webgpu (node): share of its base matmul',
      'prefill, H = 64: webgpu (node) vs naive tfjs composition',
      'prefill, H = 64: webgpu (node) vs per-adapter loop',
      'prefill, H = 64: webgpu (node): share of its base matmul',
    ]);
    for (const r of results)
      expect(Object.keys(r.gpu?.samples ?? {}).sort()).toEqual(['base-webgpu', 'loop-webgpu', 'lora-webgpu', 'naive-webgpu']);
    expect(kernelTable(results)).toMatch(/### decode: T = 8, 4 adapters/);
    expect(targetTable(targets)).toMatch(/\| target/);
  }, 60_000);
});
