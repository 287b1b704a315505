import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Random } from '@lora/conformance';
import { createLoRA, LoRAError, LoRALinear, reference } from '@lora/core';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it, vi } from 'vitest';
import { chooseEngine } from './engine.js';
import { createCpuBackend } from './index.js';
import { simdSupported } from './simd/module.js';

tf.env().set('IS_TEST', true);

describe('engines', () => {
  it('defaults to engine "wasm" when tfjs-backend-wasm is installed, with SIMD kernels', async () => {
    const rt = await createLoRA({ backend: 'cpu' });
    expect(rt.backend.tfBackend).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(rt.backend.weightLayout).toBe('in-out');
    expect(rt.backend.stats?.().simd).toBe(1);
    rt.dispose();
  });

  it('engine wasm copies host arrays into its heap when it makes a tensor (copiesHostArrays), engine js does not claim it', async () => {
    const rt = await createLoRA({ backend: 'cpu' });
    expect(rt.backend.copiesHostArrays).toBe(true);
    const values = Float32Array.from([1, 2, 3, 4]);
    const t = tf.tensor2d(values, [2, 2]);
    values.fill(-7);
    expect(Array.from(await t.data())).toEqual([1, 2, 3, 4]);
    t.dispose();
    rt.dispose();
    const js = await createLoRA({ backend: 'cpu', backendOptions: { engine: 'js' } });
    expect(js.backend.copiesHostArrays).toBe(false);
    js.dispose();
  });

  it('loads the wasm binaries offline: tfjs from its installed package, our kernels embedded', () => {
    const dist = dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm'));
    expect(existsSync(join(dist, 'tfjs-backend-wasm-simd.wasm'))).toBe(true);
    expect(simdSupported()).toBe(true);
  });

  it('falls back to "js" with a one-line notice when tfjs-backend-wasm is missing; asking for "wasm" then is E_BACKEND', async () => {
    const missing = () => Promise.reject(new LoRAError('E_BACKEND', 'engine "wasm" needs @tensorflow/tfjs-backend-wasm'));
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    expect(await chooseEngine(undefined, {}, missing)).toBe('js');
    expect(await chooseEngine(undefined, {}, missing)).toBe('js');
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]?.[0])).toMatch(/tfjs-backend-wasm is not installed: using the JS kernels/);
    warn.mockRestore();
    await expect(chooseEngine('wasm', {}, missing)).rejects.toThrow(/E_BACKEND/);
    await expect(createCpuBackend({ engine: 'gpu' })).rejects.toThrow(/E_CONFIG.*engine must be "wasm" or "js", got "gpu"/);
    await expect(createCpuBackend({ engin: 'js' })).rejects.toThrow(/unknown backendOptions key\(s\) engin/);
  });
});

describe('one kernel per layer call', () => {
  for (const engine of ['wasm', 'js'] as const) {
    it(`engine ${engine}: addLoRALinear and addLoRALogits run the fused kernel once; separate calls still work`, async () => {
      const rt = await createLoRA({ backend: 'cpu', backendOptions: { engine }, maxLoras: 2, maxLoraRank: 4 });
      try {
        expect(rt.backend.linear).toBeTypeOf('function');
        expect(rt.backend.skipsPaddedRanks).toBe(true);
        const x = tf.ones([3, 8]) as tf.Tensor2D;
        const y = tf.zeros([3, 6]) as tf.Tensor2D;
        const a = tf.ones([2, 4, 8]) as tf.Tensor3D;
        const b = tf.ones([2, 6, 4]) as tf.Tensor3D;
        rt.punica.updateMetadata({ tokenLoraIndices: [0, -1, 1] });
        const calls = () => rt.backend.stats?.().kernelCalls as number;
        const before = calls();
        const fused = rt.punica.addLoRALinear(y, x, [a], [b], 1, [6], [4, 1]);
        expect(calls() - before).toBe(1);
        // Row 0: rank 4 → 4 · 8 = 32 per column; row 1: no adapter; row 2: rank 1 → 8.
        expect(Array.from(await fused.data())).toEqual([...new Array(6).fill(32), ...new Array(6).fill(0), ...new Array(6).fill(8)]);
        const logits = rt.punica.addLoRALogits(y, x, a, b, 1);
        expect(calls() - before).toBe(2);
        const shrunk = rt.punica.shrink(x, [a], 1, [4, 1]);
        const split = rt.punica.addExpand(y, shrunk, [b], [6], { slotRanks: [4, 1] });
        expect(calls() - before).toBe(4);
        expect(Array.from(await split.data())).toEqual(Array.from(await fused.data()));
        tf.dispose([x, y, a, b, fused, logits, shrunk, split]);
      } finally {
        rt.dispose();
      }
    });
  }
});

describe('slot-only uploads (overwrite)', () => {
  for (const engine of ['wasm', 'js'] as const) {
    it(`engine ${engine}: a slot write reaches the live stack in place; the other slots and a rebuilt stack agree`, async () => {
      const rt = await createLoRA({ backend: 'cpu', backendOptions: { engine }, maxLoras: 3, maxLoraRank: 2 });
      const w = tf.ones([4, 3]) as tf.Tensor2D;
      const layer = new LoRALinear(rt, { module: 'o_proj', weight: w });
      try {
        layer.setLoRA(0, Float32Array.from([1, 2, 3, 4, 5, 6]).subarray(0, 3), new Float32Array(4).fill(1));
        const before = layer.loraA[0] as tf.Tensor3D;
        const tensors = tf.memory().numTensors;
        layer.setLoRA(2, Float32Array.of(7, 8, 9, 10, 11, 12), new Float32Array(8).fill(2));
        const after = layer.loraA[0] as tf.Tensor3D;
        expect(after).toBe(before); // written in place, not made anew
        expect(tf.memory().numTensors).toBe(tensors);
        // Slot 0: rank 1, padded; slot 1: empty; slot 2: rank 2.
        expect(Array.from(after.dataSync())).toEqual([1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 8, 9, 10, 11, 12]);
        expect(Array.from((layer.loraB[0] as tf.Tensor3D).dataSync()).slice(16)).toEqual(new Array(8).fill(2));
        // A stack someone disposed cannot be written in place: the next read makes it anew from the mirror.
        before.dispose();
        layer.resetLoRA(2);
        const rebuilt = layer.loraA[0] as tf.Tensor3D;
        expect(rebuilt).not.toBe(before);
        expect(Array.from(rebuilt.dataSync())).toEqual([1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
      } finally {
        layer.dispose();
        w.dispose();
        rt.dispose();
      }
    });
  }
});

describe('SIMD kernels vs the scalar kernels (random shapes)', () => {
  it('agree within the accuracy promise on 40 random shapes, both ways of addInputs', async () => {
    const rng = new Random(2025);
    const wasm = await createLoRA({ backend: await createCpuBackend({ engine: 'wasm' }), maxLoras: 6, maxLoraRank: 40, maxNumTokens: 256 });
    const js = await createLoRA({ backend: await createCpuBackend({ engine: 'js' }), maxLoras: 6, maxLoraRank: 40, maxNumTokens: 256 });
    const run = async (
      rt: typeof wasm,
      data: Record<string, Float32Array>,
      shape: { T: number; H: number; O: number; R: number; slots: Int32Array; addInputs: boolean },
    ) => {
      await tf.setBackend(rt.backend.tfBackend);
      const { T, H, O, R } = shape;
      const t = {
        x: tf.tensor2d(data.x!, [T, H]),
        a: tf.tensor3d(data.a!, [6, R, H]),
        b: tf.tensor3d(data.b!, [6, O, R]),
        y: tf.tensor2d(data.y!, [T, O + 3]),
      };
      rt.punica.updateMetadata({ tokenLoraIndices: shape.slots });
      const s = rt.punica.shrink(t.x, [t.a], 0.7);
      const e = rt.punica.addExpand(t.y, s, [t.b], [O], { offsetStart: 1, addInputs: shape.addInputs });
      const out = { shrink: s.dataSync() as Float32Array, expand: e.dataSync() as Float32Array };
      tf.dispose([...Object.values(t), s, e]);
      return out;
    };
    for (let i = 0; i < 40; i++) {
      const shape = {
        T: rng.int(1, 70),
        H: rng.int(1, 300),
        O: rng.int(1, 300),
        R: rng.int(1, 40),
        slots: new Int32Array(0),
        addInputs: i % 2 === 0,
      };
      shape.slots = Int32Array.from({ length: shape.T }, () => rng.int(-1, 5));
      const { T, H, O, R } = shape;
      const data = { x: rng.floats(T * H), a: rng.floats(6 * R * H), b: rng.floats(6 * O * R), y: rng.floats(T * (O + 3)) };
      const simd = await run(wasm, data, shape);
      const scalar = await run(js, data, shape);
      // The scalar result as the reference, with the float64 row scales of the same problem.
      const shrinkRef = reference.referenceShrink({
        x: data.x,
        numTokens: T,
        hidden: H,
        loraA: [data.a],
        rank: R,
        tokenLoraIndices: shape.slots,
        scale: 0.7,
      });
      expect(
        reference.maxRelativeRowError(simd.shrink, { ...shrinkRef, out: Float64Array.from(scalar.shrink) }),
        `shrink ${JSON.stringify({ T, H, R })}`,
      ).toBeLessThanOrEqual(1e-4);
      const expandRef = reference.referenceExpand({
        y: data.y,
        numTokens: T,
        width: O + 3,
        x: scalar.shrink,
        loraB: [data.b],
        outputSlices: [O],
        rank: R,
        tokenLoraIndices: shape.slots,
        offsetStart: 1,
        addInputs: shape.addInputs,
      });
      expect(
        reference.maxRelativeRowError(simd.expand, { ...expandRef, out: Float64Array.from(scalar.expand) }),
        `expand ${JSON.stringify({ T, O, R })}`,
      ).toBeLessThanOrEqual(1e-4);
    }
    wasm.dispose();
    js.dispose();
  }, 60_000);
});

describe('the embedded wasm module', () => {
  it('is the AssemblyScript source compiled with the recorded flags (run build:wasm after editing assembly/)', async () => {
    const { compileKernels, moduleSource } = await import('../scripts/build-wasm.mjs');
    const { readFile } = await import('node:fs/promises');
    const committed = await readFile(new URL('./simd/kernels-wasm.ts', import.meta.url), 'utf8');
    expect(moduleSource(await compileKernels())).toBe(committed);
  }, 60_000);
});
