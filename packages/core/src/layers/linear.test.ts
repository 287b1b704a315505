import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLoRA, type LoRARuntime } from '../create.js';
import { createReferenceBackend } from '../reference-backend.js';
import { LoRALinear, LoRALogits } from './linear.js';

tf.env().set('IS_TEST', true);

/** The tfjs kernels one forward runs, by name. */
async function kernelsOf(f: () => tf.Tensor): Promise<{ names: string[]; values: Float32Array }> {
  let out: tf.Tensor | undefined;
  const info = await tf.profile(() => {
    out = f();
    return out;
  });
  const values = (await (out as tf.Tensor).data()) as Float32Array;
  out?.dispose();
  return { names: info.kernelNames, values };
}

describe('a layer call with nothing to add', () => {
  let rt: LoRARuntime;
  const owned: tf.Tensor[] = [];
  beforeEach(async () => {
    rt = await createLoRA({ backend: createReferenceBackend(), maxLoras: 2, maxLoraRank: 4 });
  });
  afterEach(() => {
    rt.dispose();
    tf.dispose(owned.splice(0));
  });

  it('runs the base matmul only (no LoRA kernel, no copy) when no row has an adapter or none targets the layer', async () => {
    const weight = tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2]);
    const x = tf.tensor2d([0.5, -1, 2, 0.25], [2, 2]);
    owned.push(weight, x);
    const layer = new LoRALinear(rt, { module: 'o', weight });
    const head = new LoRALogits(rt, { module: 'lm_head', weight });
    layer.setLoRA(0, new Float32Array([1, 1]), new Float32Array([1, 2, 3]));
    head.setLoRA(0, new Float32Array([1, 1]), new Float32Array([1, 2, 3]));
    const base = Array.from(tf.matMul(x, weight, false, true).dataSync());
    for (const tokenLoraIndices of [
      [-1, -1],
      [1, 1],
      [1, -1],
    ]) {
      rt.punica.updateMetadata({ tokenLoraIndices });
      for (const l of [layer, head]) {
        const { names, values } = await kernelsOf(() => l.forward(x));
        expect(names, `${l.modules[0]} with slots ${tokenLoraIndices}`).toEqual(['BatchMatMul']);
        expect(Array.from(values)).toEqual(base);
      }
    }
    // With a row on slot 0 (which has the adapter) its LoRA term is added.
    rt.punica.updateMetadata({ tokenLoraIndices: [0, -1] });
    const { values } = await kernelsOf(() => layer.forward(x));
    expect(Array.from(values.slice(3))).toEqual(base.slice(3));
    expect(Array.from(values.slice(0, 3))).not.toEqual(base.slice(0, 3));
  });
});
