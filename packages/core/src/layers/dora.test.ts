import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type AdapterModuleWeights, createAdapter } from '../adapters/adapter.js';
import { createLoRA, type LoRARuntime } from '../create.js';
import { maxRelativeRowError, referenceLoRALayer } from '../reference.js';
import { createReferenceBackend } from '../reference-backend.js';
import { codeOf } from '../test-support.js';
import { LoRALinear } from './linear.js';

tf.env().set('IS_TEST', true);

const [H, O] = [64, 4];
/** A base weight with rows of different norms, and an input. */
const W = Float32Array.from({ length: O * H }, (_, i) => Math.sin(i + 1) * (1 + (i % 3)));
const X = Float32Array.from({ length: 2 * H }, (_, i) => Math.cos(i * 0.7));

/**
 * A rank-1 DoRA module whose B·A cancels row 0 of W up to `1 − keep`: `W_0 + s·B_0·A ≈ keep·W_0`.
 * Other rows get an ordinary update.
 */
function cancelling(keep: number, stretch = 3.1): AdapterModuleWeights {
  const scale = 2;
  // A = 3.1·W_0, rounded: the float32 sums of W·Aᵀ and ‖W_0‖² then round differently (stretch 1: exactly W_0).
  const a = W.slice(0, H).map((v) => v * stretch);
  const b = Float32Array.from([-(1 - keep) / (stretch * scale), 0.1, -0.2, 0.3]);
  return { name: 'm', kind: 'linear', rank: 1, scale, a, b, inFeatures: H, outFeatures: O, magnitude: Float32Array.from([1, 2, 0.5, 1.5]) };
}

describe('DoRA norms', () => {
  let rt: LoRARuntime;
  let owned: tf.Tensor[];
  beforeEach(async () => {
    rt = await createLoRA({ backend: createReferenceBackend(), maxLoras: 2, maxLoraRank: 4 });
    owned = [tf.tensor2d(W, [O, H]), tf.tensor2d(X, [2, H])];
  });
  afterEach(() => {
    rt.dispose();
    tf.dispose(owned);
  });

  it('a row the adapter nearly cancels (W_o ≈ −s·B_o·A) is normed directly, not by the float32 expansion', async () => {
    // ‖W_0 + s·B_0·A‖ = 1e-4·‖W_0‖: expanding the square loses every digit of it in float32.
    const m = cancelling(1e-4);
    const layer = new LoRALinear(rt, { module: 'm', weight: owned[0] as tf.Tensor2D });
    rt.adapters.register(createAdapter('near', [m]));
    rt.adapters.setBatch(['near'], [2]);
    const out = layer.forward(owned[1] as tf.Tensor2D);
    const ref = referenceLoRALayer({
      x: X,
      numTokens: 2,
      hidden: H,
      weight: W,
      outputSlices: [O],
      slots: [[m], [null]],
      tokenLoraIndices: rt.punica.meta.tokenLoraIndices,
    });
    // The factor of row 0 is ~1e4 · m / ‖W_0‖; a wrong norm would be off by orders of magnitude.
    expect(maxRelativeRowError(await out.data(), ref)).toBeLessThan(1e-3);
    out.dispose();
  });

  it('a zero norm is E_FORMAT naming the module at activation; slots, tensors and the batch stay as they were', () => {
    const layer = new LoRALinear(rt, { module: 'm', weight: owned[0] as tf.Tensor2D });
    rt.adapters.register(createAdapter('zero', [cancelling(0, 1)]));
    rt.adapters.register(createAdapter('fine', [cancelling(0.5)]));
    rt.adapters.setBatch(['fine'], [2]);
    const [slots, before] = [rt.adapters.slots, tf.memory().numTensors];
    expect(codeOf(() => rt.adapters.setBatch(['zero', 'fine'], [1, 1]))).toBe('E_FORMAT');
    expect(() => rt.adapters.setBatch(['zero'], [2])).toThrow(/m: DoRA needs ‖W \+ scale·B·A‖ of every output row to be non-zero; row 0/);
    expect(rt.adapters.slots).toEqual(slots);
    expect([...rt.adapters.batch]).toEqual(['fine']);
    expect(tf.memory().numTensors).toBe(before);
    layer.dispose();
  });

  it('a magnitude vector of the wrong length or on an embedding is refused when the adapter is built', () => {
    const m = cancelling(0.5);
    expect(codeOf(() => createAdapter('short', [{ ...m, magnitude: new Float32Array(3) }]))).toBe('E_SHAPE');
    expect(codeOf(() => createAdapter('nan', [{ ...m, magnitude: Float32Array.from([1, Number.NaN, 1, 1]) }]))).toBe('E_FORMAT');
    expect(codeOf(() => createAdapter('emb', [{ ...m, kind: 'embedding' }]))).toBe('E_UNSUPPORTED');
  });
});
