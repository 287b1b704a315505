import { createLoRA } from '@lora/core';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { createWebGPUBackend } from './index.js';

tf.env().set('IS_TEST', true);

// tfjs rewrites a program's `shaderKey` in place when it runs it: one program object reused across
// the slices of a packed (q/k/v) call carried a longer key into each next slice and compiled the
// same WGSL once more per slice. A 3-slice call must reuse what a 1-slice call at the same sizes compiled.
describe.each(['bgmv', 'sgmv'] as const)('webgpu %s: the slices of a packed call share programs', (path) => {
  it('a 3-slice shrink and expand compile nothing a 1-slice call at the same sizes did not', async () => {
    const rt = await createLoRA({ backend: createWebGPUBackend({ path }), maxLoras: 2, maxLoraRank: 8, maxNumTokens: 64 });
    const [T, H, R, O] = [8, 32, 8, 16];
    const x = tf.randomNormal<tf.Rank.R2>([T, H]);
    const a = [0, 1, 2].map(() => tf.randomNormal<tf.Rank.R3>([2, R, H]));
    const b = [0, 1, 2].map(() => tf.randomNormal<tf.Rank.R3>([2, O, R]));
    try {
      rt.punica.updateMetadata({ tokenLoraIndices: Int32Array.from({ length: T }, (_, i) => i % 2) });
      const run = async (slices: number) => {
        const y = tf.zeros<tf.Rank.R2>([T, slices * O]);
        const out = rt.punica.addLoRALinear(y, x, a.slice(0, slices), b.slice(0, slices), 1, Array(slices).fill(O));
        await out.data();
        tf.dispose([y, out]);
        return rt.backend.stats?.().programsCompiled ?? Number.NaN;
      };
      const afterOne = await run(1);
      expect(afterOne).toBeGreaterThan(0);
      expect(await run(3)).toBe(afterOne);
    } finally {
      tf.dispose([x, ...a, ...b]);
      rt.dispose();
    }
  }, 120_000);
});

// A packed call writes each slice's plane and columns from its own run: they must be what five
// one-slice calls give, bit for bit, and y's value in the columns around and between them.
describe.each(['single', 'mixed'] as const)('webgpu bgmv: a call of five slices at an offset (%s batch)', (batch) => {
  it.each([true, false])(
    'five slices between untouched columns are the five one-slice results, bit for bit (addInputs %s)',
    async (addInputs) => {
      const rt = await createLoRA({ backend: createWebGPUBackend({ path: 'bgmv' }), maxLoras: 3, maxLoraRank: 8, maxNumTokens: 16 });
      const [T, H, R] = [5, 12, 8];
      const widths = [4, 8, 4, 12, 4];
      const x = tf.randomNormal<tf.Rank.R2>([T, H]);
      const a = widths.map(() => tf.randomNormal<tf.Rank.R3>([3, R, H]));
      const b = widths.map((O) => tf.randomNormal<tf.Rank.R3>([3, O, R]));
      const W = 3 + widths.reduce((n, o) => n + o, 0) + 2;
      const y = tf.randomNormal<tf.Rank.R2>([T, W]);
      try {
        rt.punica.updateMetadata({ tokenLoraIndices: Int32Array.from({ length: T }, (_, i) => (batch === 'single' ? 1 : (i % 3) - 1)) });
        const xs = rt.punica.shrink(x, a, 0.5);
        const all = rt.punica.addExpand(y, xs, b, widths, { offsetStart: 3, addInputs });
        const [gotPlanes, got] = [await xs.data(), await all.data()];
        const wantPlanes = new Float32Array(gotPlanes.length);
        const want = Float32Array.from(await y.data());
        let col = 3;
        for (const [s, O] of widths.entries()) {
          const plane = rt.punica.shrink(x, [a[s]!], 0.5);
          const ys = tf.slice(y, [0, col], [T, O]);
          const one = rt.punica.addExpand(ys, plane, [b[s]!], [O], { addInputs });
          wantPlanes.set(await plane.data(), s * T * R);
          const v = await one.data();
          for (let t = 0; t < T; t++) want.set(v.subarray(t * O, (t + 1) * O), t * W + col);
          tf.dispose([plane, ys, one]);
          col += O;
        }
        tf.dispose([xs, all]);
        expect(Array.from(gotPlanes)).toEqual(Array.from(wantPlanes));
        expect(Array.from(got)).toEqual(Array.from(want));
      } finally {
        tf.dispose([x, y, ...a, ...b]);
        rt.dispose();
      }
    },
    120_000,
  );
});

describe('webgpu: batches the device cannot dispatch', () => {
  it('a maxNumTokens above maxComputeWorkgroupsPerDimension is refused at createLoRA, not at the first big batch', async () => {
    const rt = await createLoRA({ backend: 'webgpu' });
    const limit = rt.backend.maxBatchTokens?.();
    rt.dispose();
    // The WebGPU spec's default limit; adapters may raise it.
    expect(limit).toBeGreaterThanOrEqual(65_535);
    const err = await createLoRA({ backend: 'webgpu', maxNumTokens: (limit as number) + 1 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_CONFIG', message: expect.stringMatching(/backend "webgpu" .*at most \d+ tokens/) });
  }, 120_000);
});

// Each program reads a slot only up to its true rank (the rank uniforms): NaN past it must change
// nothing, on every path and in both the vec4 and the scalar variants (the conformance suite's
// padded-rank batches are mixed, so the single-adapter programs are checked here).
describe.each([
  ['single', 'bgmv'],
  ['mixed', 'bgmv'],
  ['mixed', 'sgmv'],
] as const)('webgpu %s batch, %s: padding past a slot’s rank is never read', (batch, path) => {
  it.each([
    ['vec4', 32, 8],
    ['scalar', 30, 6],
  ] as const)(
    '%s programs (H = %i, R = %i): NaN padding gives the zero padding’s result, bit for bit',
    async (_, H, R) => {
      const rt = await createLoRA({ backend: createWebGPUBackend({ path }), maxLoras: 5, maxLoraRank: R, maxNumTokens: 64 });
      const [T, O, L] = [20, 12, 5];
      const ranks = [R, 3, 5, 1, 0];
      // Slot l's rank rows of A and rank columns of B hold weights; the rest is `fill`.
      const stack = (rows: number, cols: number, rankAxis: 1 | 2, fill: number, values: Float32Array) =>
        tf.tensor3d(
          values.map((v, i) => {
            const [l, rest] = [Math.floor(i / (rows * cols)), i % (rows * cols)];
            const at = rankAxis === 1 ? Math.floor(rest / cols) : rest % cols;
            return at < (ranks[l] as number) ? v : fill;
          }),
          [L, rows, cols],
        );
      const [aValues, bValues] = [tf.randomNormal([L * R * H]).dataSync(), tf.randomNormal([L * O * R]).dataSync()] as Float32Array[];
      const x = tf.randomNormal<tf.Rank.R2>([T, H]);
      const y = tf.randomNormal<tf.Rank.R2>([T, O]);
      const run = async (fill: number) => {
        const a = stack(R, H, 1, fill, aValues as Float32Array);
        const b = stack(O, R, 2, fill, bValues as Float32Array);
        const out = rt.punica.addLoRALinear(y, x, [a], [b], 0.5, [O], ranks);
        const values = await out.data();
        tf.dispose([a, b, out]);
        return Array.from(values);
      };
      try {
        rt.punica.updateMetadata({
          tokenLoraIndices: Int32Array.from({ length: T }, (_, i) => (batch === 'single' ? 1 : (i % 6) - 1)),
        });
        const zeros = await run(0);
        expect(zeros.every(Number.isFinite)).toBe(true);
        expect(await run(Number.NaN)).toEqual(zeros);
      } finally {
        tf.dispose([x, y]);
        rt.dispose();
      }
    },
    120_000,
  );
});
