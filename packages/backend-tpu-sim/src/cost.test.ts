import { computeMapping } from '@lora/core/backend';
import { describe, expect, it } from 'vitest';
import { CHIPS } from './chips.js';
import { resolveTpuSimOptions } from './options.js';
import { TpuSim } from './sim.js';

// Hand-computed cases. 16 tokens alternating slots 0 and 1 of L = 3 (so N = 4 with the zero slot).
const T = 16;
const H = 256;
const R = 16;
const L = 3;
const meta = computeMapping(
  Array.from({ length: T }, (_, t) => t % 2),
  { maxLoras: L, maxNumTokens: 4096 },
);
const ones = (n: number) => new Float32Array(n).fill(0.5);

function shrink(options: Record<string, unknown>) {
  const sim = new TpuSim(resolveTpuSimOptions(options));
  sim.shrink({ x: ones(T * H), hidden: H, loraA: [ones(L * R * H)], slots: L, rank: R, meta, scale: 1 });
  return sim;
}

describe('cost model: shrink kernels, exact bytes and FLOPs', () => {
  it('all-on on v6e: 2 lane groups (rank 16 padded to 128, 2 lanes), group 1 skipped and never fetched', () => {
    const sim = shrink({ preset: 'all-on', chip: 'v6e' });
    const kernel = sim.lastCall.find((op) => op.kind === 'pallas')!;
    // idx 16·4 + x block 16×256 bf16 once + group 0's weight block 256×256 bf16 (the skipped group 1's
    // index map repeats group 0's block: no DMA) + out blocks 16×256 bf16 twice (written either way).
    expect(kernel.hbmBytes).toBe(64 + 16 * 256 * 2 + 256 * 256 * 2 + 2 * 16 * 256 * 2);
    // One 16×256 · 256×256 matmul: only group 0 (slots 0 and 1) is present.
    expect(kernel.mxuFlops).toBe(2 * 16 * 256 * 256);
    expect([kernel.gridSteps, kernel.stepsSkipped]).toEqual([2, 1]);
    const v6e = CHIPS.v6e;
    const expected = Math.max((2 * 16 * 256 * 256) / v6e.peakBf16Flops, kernel.hbmBytes / v6e.hbmBytesPerSecond) + 2 * 0.35e-6;
    expect(kernel.seconds).toBeCloseTo(expected, 15);
    expect(sim.lastCall.map((op) => [op.op, op.hbmBytes])).toEqual([
      ['cast and pad x to bf16', T * H * 4 + T * 256 * 2],
      ['shrink', kernel.hbmBytes],
      ['gather lanes and scale', 2 * T * R * 4],
    ]);
  });

  it('all-off on v5e: one masked 16×128·128×128 matmul per token per step, 128-deep blocks', () => {
    const sim = shrink({ preset: 'all-off', chip: 'v5e' });
    const kernel = sim.lastCall.find((op) => op.kind === 'pallas')!;
    expect(kernel.op).toBe('bgmv');
    // grid (1, 1, 2): x blocks 16×128 twice, all 4 slots' 128×128 weight blocks twice, one 16×128 bf16 out.
    expect(kernel.hbmBytes).toBe(64 + 2 * 16 * 128 * 2 + 2 * 4 * 128 * 128 * 2 + 16 * 128 * 2);
    expect(kernel.mxuFlops).toBe(2 * 16 * 2 * 16 * 128 * 128);
    expect([kernel.gridSteps, kernel.stepsSkipped]).toEqual([2, 0]);
  });

  it('fastMask without laning: one matmul per adapter slot (4 with the zero slot); blockSkip keeps the 2 present', () => {
    const perAdapter = shrink({ preset: 'all-off', flags: { fastMask: true }, chip: 'v5e' }).lastCall[1]!;
    expect(perAdapter.mxuFlops).toBe(2 * 4 * 2 * 16 * 128 * 128);
    const skipping = shrink({ preset: 'all-off', flags: { fastMask: true, blockSkip: true }, chip: 'v5e' }).lastCall[1]!;
    expect(skipping.mxuFlops).toBe(2 * 2 * 2 * 16 * 128 * 128);
  });

  it('einsum on v6e: one [16,256]·[256, 4·16] contraction, whole arrays read once', () => {
    const sim = shrink({ preset: 'einsum', chip: 'v6e' });
    const op = sim.lastCall[1]!;
    expect(op.op).toBe('einsum-shrink');
    expect(op.hbmBytes).toBe(64 + T * H * 2 + 4 * R * H * 2 + T * R * 2);
    expect(op.mxuFlops).toBe(2 * 16 * 256 * 256); // 4·16 = 64 columns pad to one 256-wide tile
    expect(op.gridSteps).toBe(1);
  });
});

describe('cost model: expand kernels', () => {
  const O = 512;
  const expandOnce = (sim: TpuSim, addInputs = true) =>
    sim.expand({
      y: ones(T * O),
      width: O,
      x: ones(T * R),
      loraB: [ones(L * O * R)],
      slots: L,
      rank: R,
      outputSlices: [O],
      offsetStart: 0,
      addInputs,
      meta,
    });
  const expand = (options: Record<string, unknown>) => {
    const sim = new TpuSim(resolveTpuSimOptions(options));
    expandOnce(sim);
    return sim;
  };

  it('all-on on v6e: laned contraction over 2 groups, 512-wide output block, group 1 skipped and never fetched', () => {
    const sim = expand({ preset: 'all-on', chip: 'v6e' });
    const kernel = sim.lastCall.find((op) => op.kind === 'pallas')!;
    expect(kernel.op).toBe('expand');
    // idx + group 0's x block and weight block only (group 1 is skipped: no DMA) + one bf16 output block.
    expect(kernel.hbmBytes).toBe(64 + 16 * 256 * 2 + 256 * 512 * 2 + 16 * 512 * 2);
    expect(kernel.mxuFlops).toBe(2 * 16 * 256 * 512);
    expect([kernel.gridSteps, kernel.stepsSkipped]).toEqual([2, 1]);
    expect(sim.lastCall.map((op) => [op.op, op.hbmBytes])).toEqual([
      ['scatter into lanes', T * R * 4 + T * 512 * 2],
      ['expand', kernel.hbmBytes],
      ['add into y', 3 * T * O * 4],
    ]);
  });

  it('without preTransposedExpand every call pays an XLA transpose of the bf16 stack (read + write)', () => {
    const sim = expand({ preset: 'all-on', flags: { preTransposedExpand: false }, chip: 'v6e' });
    expect(sim.lastCall[0]).toMatchObject({ op: 'transpose expand weights', hbmBytes: 2 * (L + 1) * O * R * 2, kind: 'xla' });
  });

  it('stats() keeps running totals and estimated time is the sum of the ops', () => {
    const sim = expand({ preset: 'all-on' });
    const first = sim.stats();
    expandOnce(sim, false);
    const second = sim.stats();
    expect(second.calls).toBe(2);
    expect(second.programsCompiled).toBe(1); // same static shapes: no recompile
    expect(second.gridSteps).toBe(2 * first.gridSteps);
    const micros = sim.lastCall.reduce((s, op) => s + op.seconds * 1e6, 0);
    expect(second.estimatedMicros - first.estimatedMicros).toBeCloseTo(micros, 9);
    expect(second.usefulFlops).toBe(2 * 2 * R * O * T);
  });
});

describe('cost-only runs (used by the ablation report)', () => {
  it('account exactly the same ops, bytes, FLOPs and steps as runs that compute', () => {
    const slots = Int32Array.from({ length: 45 }, (_, t) => (t % 7 === 0 ? -1 : t % 5));
    const m = computeMapping(slots, { maxLoras: 6, maxNumTokens: 4096 });
    const [h, r, o] = [300, 24, 130];
    for (const options of [
      { preset: 'all-off' },
      { preset: 'all-on' },
      { preset: 'einsum' },
      { preset: 'all-on', flags: { laning: false } },
    ]) {
      const costs = [false, true].map((costOnly) => {
        const sim = new TpuSim(resolveTpuSimOptions(options), { costOnly });
        const data = (n: number) => (costOnly ? new Float32Array(0) : ones(n));
        sim.shrink({ x: data(45 * h), hidden: h, loraA: [data(6 * r * h)], slots: 6, rank: r, meta: m, scale: 1 });
        const shrink = sim.lastCall;
        sim.expand({
          y: data(45 * o),
          width: o,
          x: data(45 * r),
          loraB: [data(6 * o * r)],
          slots: 6,
          rank: r,
          outputSlices: [o],
          offsetStart: 0,
          addInputs: true,
          meta: m,
        });
        return [shrink, sim.lastCall, sim.stats()];
      });
      expect(costs[1], JSON.stringify(options)).toEqual(costs[0]);
    }
  });
});
