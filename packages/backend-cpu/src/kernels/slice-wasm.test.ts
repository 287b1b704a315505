import { createLoRA, type LoRARuntime } from '@lora/core';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../index.js';
import { copyBlock } from './slice-wasm.js';

/** A seeded generator (mulberry32): the same cases every run. */
function rng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

describe('the heap Slice kernel for tfjs-wasm (engine wasm installs it)', () => {
  let rt: LoRARuntime;
  let ours: tf.KernelConfig;
  let theirs: tf.KernelConfig;
  beforeAll(async () => {
    // tfjs' own kernel, kept before the backend replaces it (loading tfjs-wasm registers it).
    const { loadTfjsWasm } = await import('../engine.js');
    await loadTfjsWasm({});
    theirs = tf.getKernel('Slice', 'wasm') as tf.KernelConfig;
    rt = await createLoRA({ backend: 'cpu', backendOptions: { engine: 'wasm' } });
    ours = tf.getKernel('Slice', 'wasm') as tf.KernelConfig;
  });
  afterAll(() => {
    rt.dispose();
  });
  const sliceWith = (kernel: tf.KernelConfig, x: tf.Tensor, begin: number[], size: number[]) => {
    tf.unregisterKernel('Slice', 'wasm');
    tf.registerKernel(kernel);
    try {
      return tf.tidy(() => tf.slice(x, begin, size).dataSync().slice());
    } finally {
      tf.unregisterKernel('Slice', 'wasm');
      tf.registerKernel(ours);
    }
  };

  it('is installed once, in place of tfjs-wasm’s', async () => {
    expect(ours).not.toBe(theirs);
    const again = await createLoRA({ backend: 'cpu', backendOptions: { engine: 'wasm' } });
    expect(tf.getKernel('Slice', 'wasm')).toBe(ours);
    again.dispose();
  });

  it(`gives tfjs' slice for random shapes, blocks and dtypes (${process.env.LORA_PROPERTY_RUNS ?? 300} cases; LORA_PROPERTY_RUNS for more)`, () => {
    const next = rng(17);
    const before = tf.memory().numTensors;
    for (let run = 0; run < Number(process.env.LORA_PROPERTY_RUNS ?? 300); run++) {
      const rank = 1 + next(5);
      const shape = Array.from({ length: rank }, () => 1 + next(6));
      const begin = shape.map((d) => next(d));
      // -1 (to the end) sometimes; zero-size blocks sometimes.
      const size = shape.map((d, i) => (next(5) === 0 ? -1 : next(d - (begin[i] as number) + 1)));
      const dtype = (['float32', 'int32', 'bool'] as const)[next(3)] as 'float32' | 'int32' | 'bool';
      const n = shape.reduce((a, b) => a * b, 1);
      const values = Array.from({ length: n }, () => (dtype === 'bool' ? next(2) : next(2000) - 1000 + (dtype === 'float32' ? 0.5 : 0)));
      const x = tf.tensor(values, shape, dtype);
      const want = sliceWith(theirs, x, begin, size);
      const got = sliceWith(ours, x, begin, size);
      expect(Array.from(got), `shape [${shape}] begin [${begin}] size [${size}] ${dtype}`).toEqual(Array.from(want));
      x.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('strings go to tfjs’ kernel', () => {
    const x = tf.tensor(['a', 'b', 'c', 'd'], [2, 2], 'string');
    expect(tf.slice(x, [1, 0], [1, 2]).arraySync()).toEqual([['c', 'd']]);
    x.dispose();
  });

  it('copyBlock: whole inner axes make one run; a scalar is one value', () => {
    const x = Float32Array.from({ length: 24 }, (_, i) => i);
    const out = new Float32Array(8);
    copyBlock(x, [2, 3, 4], [1, 1, 0], [1, 2, 4], out);
    expect(Array.from(out)).toEqual([16, 17, 18, 19, 20, 21, 22, 23]);
    const cols = new Float32Array(4);
    copyBlock(x, [2, 3, 4], [0, 2, 1], [2, 1, 2], cols);
    expect(Array.from(cols)).toEqual([9, 10, 21, 22]);
    const one = new Float32Array(1);
    copyBlock(Float32Array.of(7), [], [], [], one);
    expect(one[0]).toBe(7);
  });
});
