import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Random, slotIndices } from '@lora/conformance';
import { createLoRA, tokenBuckets } from '@lora/core';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { createWebGPUBackend } from './index.js';

describe('static shapes: pipelines compiled over a random trace', () => {
  it('200 random batches (T 1–4096, 1–8 adapters, ranks 8/16/32/64) compile no more pipelines than there are buckets', async () => {
    const rng = new Random(200);
    const rt = await createLoRA({ backend: createWebGPUBackend(), maxLoras: 8, maxLoraRank: 64, maxNumTokens: 4096 });
    const H = 36;
    const O = 20;
    const ranks = [8, 16, 32, 64];
    const stacks = new Map(
      ranks.map((R) => [R, { a: tf.randomNormal([8, R, H]) as tf.Tensor3D, b: tf.randomNormal([8, O, R]) as tf.Tensor3D }]),
    );
    for (let i = 0; i < 200; i++) {
      const T = rng.int(1, 4096);
      const R = rng.pick(ranks);
      const active = rng.int(1, 8);
      const slots = Int32Array.from(slotIndices(rng, rng.pick(['random', 'single', 'requests'] as const), T, active));
      rt.punica.updateMetadata({ tokenLoraIndices: slots });
      const x = tf.randomNormal([T, H]) as tf.Tensor2D;
      const y = tf.zeros([T, O]) as tf.Tensor2D;
      const { a, b } = stacks.get(R)!;
      const out = rt.punica.addLoRALinear(y, x, [a], [b], 1, [O]);
      if (i % 50 === 0) await out.data();
      tf.dispose([x, y, out]);
    }
    const compiled = rt.backend.stats?.().programsCompiled ?? Number.NaN;
    // Sizes are uniforms: only baked variants compile. Here H and every R are multiples of 4, so
    // BGMV shrink and expand (vec4) × single/indexed, SGMV shrink and expand, and the copy: 7.
    expect(compiled).toBeGreaterThan(0);
    expect(compiled).toBeLessThanOrEqual(tokenBuckets(4096).length);
    expect(compiled).toBeLessThanOrEqual(7);
    for (const { a, b } of stacks.values()) tf.dispose([a, b]);
    rt.dispose();
  }, 300_000);
});

describe('without a WebGPU adapter', () => {
  it('createLoRA({ backend: "webgpu" }) fails with E_BACKEND saying what to install', () => {
    const here = dirname(fileURLToPath(import.meta.url));
    const script = `
      import { createLoRA } from '@lora/core';
      import './index.ts';
      try { await createLoRA({ backend: 'webgpu' }); console.log('no error'); }
      catch (e) { console.log(e.code + ' ' + e.message); }
      process.exit(0);
    `;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--conditions=@lora/source', '--input-type=module', '-e', script], {
      cwd: here,
      env: { ...process.env, VK_ICD_FILENAMES: join(here, 'no-such-icd.json') },
      encoding: 'utf8',
    });
    expect(r.stdout).toMatch(/^E_BACKEND \[E_BACKEND\] no WebGPU adapter: in Node install a Vulkan driver/m);
  }, 60_000);
});
