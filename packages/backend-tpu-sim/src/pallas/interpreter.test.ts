import { describe, expect, it } from 'vitest';
import { hbmArray } from './arrays.js';
import { type KernelDef, ProgramCache } from './interpreter.js';

/** Row sums of a `[rows, cols]` f32 array, reduced over column blocks into an f32 VMEM scratch. */
function rowSum(rows: number, cols: number, bR: number, bC: number): KernelDef {
  return {
    name: 'row-sum',
    grid: [rows / bR, cols / bC],
    dimensions: ['parallel', 'arbitrary'],
    numPrefetch: 0,
    inputs: [{ shape: [rows, cols], dtype: 'f32', spec: { block: [bR, bC], index: (g) => [g[0]!, g[1]!] } }],
    outputs: [{ shape: [rows, 1], dtype: 'f32', spec: { block: [bR, 1], index: (g) => [g[0]!, 0] } }],
    scratch: [[bR]],
    statics: {},
    body: (ctx) => {
      const acc = ctx.scratch[0]!;
      ctx.when(ctx.programId(1) === 0, () => acc.fill(0));
      const x = ctx.inputs[0]!;
      for (let r = 0; r < bR; r++) {
        for (let c = 0; c < bC; c++) acc[r]! += x.array.data[(x.origin[0]! + r) * cols + x.origin[1]! + c]!;
      }
      ctx.when(ctx.programId(1) === ctx.numPrograms(1) - 1, () => {
        const out = ctx.outputs[0]!;
        for (let r = 0; r < bR; r++) out.array.data[out.origin[0]! + r] = acc[r]!;
      });
    },
  };
}

describe('Pallas interpreter', () => {
  it('reduces over an arbitrary axis with a VMEM accumulator; DMAs a block when its index changes', () => {
    const cache = new ProgramCache(128);
    const x = hbmArray(
      [4, 6],
      'f32',
      undefined,
      Float32Array.from({ length: 24 }, (_, i) => i),
    );
    const out = hbmArray([4, 1], 'f32');
    const run = cache.compile(rowSum(4, 6, 2, 2)).run([], [x], [out]);
    expect(Array.from(out.data)).toEqual([15, 51, 87, 123]);
    // 6 steps, each a new 2×2 input block (16 B); the 2 output blocks (8 B) are written back once each.
    expect(run).toMatchObject({ gridSteps: 6, hbmBytes: 6 * 16 + 2 * 8, stepsSkipped: 6, matmuls: 0 });
  });

  it('compiles once per static signature, like jit', () => {
    const cache = new ProgramCache(128);
    const a = cache.compile(rowSum(4, 6, 2, 2));
    expect(cache.compile(rowSum(4, 6, 2, 2))).toBe(a);
    cache.compile(rowSum(4, 6, 2, 3));
    cache.compile(rowSum(8, 6, 2, 2));
    expect(cache.compiled).toBe(3);
  });

  it('index maps read scalar-prefetched arrays; an unchanged block index is not fetched again', () => {
    const cache = new ProgramCache(128);
    // Gather rows of a table by a prefetched index (like picking an adapter's weights per step).
    const table = hbmArray(
      [4, 8],
      'bf16',
      undefined,
      Float32Array.from({ length: 32 }, (_, i) => i),
    );
    const out = hbmArray([5, 8], 'f32');
    const def: KernelDef = {
      name: 'gather',
      grid: [5],
      dimensions: ['parallel'],
      numPrefetch: 1,
      inputs: [{ shape: [4, 8], dtype: 'bf16', spec: { block: [1, 8], index: (g, p) => [p[0]![g[0]!]!, 0] } }],
      outputs: [{ shape: [5, 8], dtype: 'f32', spec: { block: [1, 8], index: (g) => [g[0]!, 0] } }],
      scratch: [],
      statics: {},
      body: (ctx) => {
        const [src, dst] = [ctx.inputs[0]!, ctx.outputs[0]!];
        dst.array.data.set(src.array.data.subarray(src.origin[0]! * 8, src.origin[0]! * 8 + 8), dst.origin[0]! * 8);
        ctx.chargeMatmul(1, 1, 1);
      },
    };
    const run = cache.compile(def).run([Int32Array.of(3, 3, 1, 1, 3)], [table], [out]);
    expect(Array.from(out.data.subarray(0, 8))).toEqual([24, 25, 26, 27, 28, 29, 30, 31]);
    expect(Array.from(out.data.subarray(16, 24))).toEqual([8, 9, 10, 11, 12, 13, 14, 15]);
    // prefetch 5×4 B; table rows fetched at steps 0, 2, 4 (3 × 8 bf16 = 16 B); 5 output rows × 32 B.
    expect(run.hbmBytes).toBe(20 + 3 * 16 + 5 * 32);
    // One 1×1·1×1 matmul per step, padded to 8 rows × one 128×128 MXU tile.
    expect(run.mxuFlops).toBe(5 * 2 * 8 * 128 * 128);
    expect(run.stepsSkipped).toBe(0);
  });

  it('a skipped step keeps the previous blocks (no DMA) and must issue no matmul', () => {
    const cache = new ProgramCache(128);
    const x = hbmArray(
      [4, 6],
      'f32',
      undefined,
      Float32Array.from({ length: 24 }, (_, i) => i),
    );
    // Row sums over column blocks, where the steps of row block 1 are declared skipped (their body does nothing).
    const base = rowSum(4, 6, 2, 2);
    const skipping: KernelDef = {
      ...base,
      name: 'row-sum-skipping',
      skipStep: (g) => g[0] === 1,
      body: (ctx) => {
        if (ctx.programId(0) === 1) return;
        base.body(ctx);
      },
    };
    const out = hbmArray([4, 1], 'f32');
    const run = cache.compile(skipping).run([], [x], [out]);
    // Only row block 0's three 2×2 blocks are fetched (16 B each); both output blocks are still written back.
    expect(run).toMatchObject({ gridSteps: 6, hbmBytes: 3 * 16 + 2 * 8, stepsSkipped: 6 });
    const lying: KernelDef = {
      ...base,
      name: 'lying',
      skipStep: () => true,
      body: (ctx) => ctx.chargeMatmul(1, 1, 1),
    };
    expect(() => cache.compile(lying).run([], [x], [hbmArray([4, 1], 'f32')])).toThrow(/declared skipped/);
  });

  it('rejects blocks that do not tile the array, reductions before parallel axes, and out-of-range block indices', () => {
    const cache = new ProgramCache(128);
    expect(() => cache.compile(rowSum(4, 6, 2, 4))).toThrow(/E_SHAPE|does not tile/);
    expect(() => cache.compile({ ...rowSum(4, 6, 2, 2), dimensions: ['arbitrary', 'parallel'] })).toThrow(/arbitrary/);
    const bad = { ...rowSum(4, 6, 2, 2), name: 'bad' };
    const def: KernelDef = { ...bad, inputs: [{ ...bad.inputs[0]!, spec: { block: [2, 2], index: (g) => [g[0]! + 1, g[1]!] } }] };
    expect(() => cache.compile(def).run([], [hbmArray([4, 6], 'f32')], [hbmArray([4, 1], 'f32')])).toThrow(/out of range/);
  });
});
