import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type AdapterModuleWeights, createAdapter } from '../adapters/adapter.js';
import { createLoRA, type LoRARuntime } from '../create.js';
import { maxRelativeRowError, referenceLoRALayer } from '../reference.js';
import { createReferenceBackend } from '../reference-backend.js';
import { codeOf } from '../test-support.js';
import { LoRAEmbedding } from './embedding.js';
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
    expect(() => rt.adapters.setBatch(['zero'], [2])).toThrow(
      /m: DoRA needs the norm of W \+ scale·ΔW to be non-zero for every output feature; feature 0/,
    );
    expect(rt.adapters.slots).toEqual(slots);
    expect([...rt.adapters.batch]).toEqual(['fine']);
    expect(tf.memory().numTensors).toBe(before);
    layer.dispose();
  });

  it('a magnitude vector of the wrong length is refused when the adapter is built', () => {
    const m = cancelling(0.5);
    expect(codeOf(() => createAdapter('short', [{ ...m, magnitude: new Float32Array(3) }]))).toBe('E_SHAPE');
    expect(codeOf(() => createAdapter('nan', [{ ...m, magnitude: Float32Array.from([1, Number.NaN, 1, 1]) }]))).toBe('E_FORMAT');
    // An embedding's has one value per embedding dimension (outFeatures), not per token.
    const emb = { ...embeddingModule(), magnitude: new Float32Array(V) };
    expect(codeOf(() => createAdapter('emb', [emb]))).toBe('E_SHAPE');
  });

  it("reads the batch's own mapping: slots a caller writes into punica.meta's copy change nothing", async () => {
    const layer = new LoRALinear(rt, { module: 'm', weight: owned[0] as tf.Tensor2D });
    rt.adapters.register(createAdapter('half', [cancelling(0.5)]));
    rt.adapters.setBatch(['half', null], [1, 1]);
    const bits = async (t: tf.Tensor) => Array.from(new Uint32Array(((await t.data()) as Float32Array).slice().buffer));
    const before = layer.forward(owned[1] as tf.Tensor2D);
    rt.punica.meta.tokenLoraIndices.set([1, 0]);
    const after = layer.forward(owned[1] as tf.Tensor2D);
    expect(await bits(after)).toEqual(await bits(before));
    tf.dispose([before, after]);
    layer.dispose();
  });
});

// An embedding table [V, D] and a rank-2 embedding adapter (PEFT: lora_embedding_A [r, V], lora_embedding_B [D, r]).
const [V, D] = [10, 4];
const E = Float32Array.from({ length: V * D }, (_, i) => Math.cos(i * 0.9) * (1 + (i % 4)));
function embeddingModule(magnitude?: Float32Array): AdapterModuleWeights {
  const a = Float32Array.from({ length: 2 * V }, (_, i) => Math.sin(i * 1.3));
  const b = Float32Array.from({ length: D * 2 }, (_, i) => Math.cos(i * 0.4) * 0.5);
  return { name: 'emb', kind: 'embedding', rank: 2, scale: 1.5, a, b, inFeatures: V, outFeatures: D, ...(magnitude ? { magnitude } : {}) };
}

describe('DoRA on an embedding (PEFT DoraEmbeddingLayer)', () => {
  it('scales each embedding dimension by m / ‖column of E + s·(B·A)ᵀ‖ over the vocabulary; base and plain rows keep their bits', async () => {
    const rt = await createLoRA({ backend: createReferenceBackend(), maxLoras: 2, maxLoraRank: 4 });
    const table = tf.tensor2d(E, [V, D]);
    try {
      const layer = new LoRAEmbedding(rt, { module: 'emb', weight: table });
      const m = Float32Array.from([1.5, 0.5, 2, 1]);
      rt.adapters.register(createAdapter('dora', [embeddingModule(m)]));
      rt.adapters.register(createAdapter('plain', [embeddingModule()]));
      const ids = [3, 7, 3, 0];
      rt.adapters.setBatch(['dora', null, 'plain'], [2, 1, 1]);
      const out = layer.forward(tf.tensor1d(ids, 'int32'));
      const got = await out.data();
      // float64, from PEFT's formula.
      const { a, b, scale } = embeddingModule();
      const delta = (v: number, d: number) => scale * (b[d * 2] * a[v] + b[d * 2 + 1] * a[V + v]);
      const norms = Array.from({ length: D }, (_, d) =>
        Math.sqrt(Array.from({ length: V }, (_, v) => (E[v * D + d] + delta(v, d)) ** 2).reduce((x, y) => x + y)),
      );
      for (const t of [0, 1]) {
        for (let d = 0; d < D; d++) {
          const want = (m[d] / norms[d]) * (E[ids[t] * D + d] + delta(ids[t], d));
          expect(Math.abs(got[t * D + d] - want)).toBeLessThan(1e-5 * Math.max(1, Math.abs(want)));
        }
      }
      // The base row is the table's row, bit for bit.
      expect(Array.from(got.subarray(2 * D, 3 * D))).toEqual(Array.from(E.subarray(ids[2] * D, (ids[2] + 1) * D)));
      // The plain adapter's row: E + s·ΔE without any factor.
      for (let d = 0; d < D; d++) expect(got[3 * D + d]).toBeCloseTo(E[d] + delta(0, d), 5);
      out.dispose();
      layer.dispose();
    } finally {
      table.dispose();
      rt.dispose();
    }
  });

  it('a column the adapter cancels exactly is E_FORMAT naming the module, at activation', async () => {
    const rt = await createLoRA({ backend: createReferenceBackend(), maxLoras: 2, maxLoraRank: 4 });
    // Column 0 of the table is all zeros and the adapter's B row 0 is zero: its norm is 0.
    const zeroColumn = E.map((v, i) => (i % D === 0 ? 0 : v));
    const table = tf.tensor2d(zeroColumn, [V, D]);
    try {
      const layer = new LoRAEmbedding(rt, { module: 'emb', weight: table });
      const m = embeddingModule(Float32Array.from([1, 1, 1, 1]));
      rt.adapters.register(createAdapter('dora', [{ ...m, b: m.b.map((v, i) => (i < 2 ? 0 : v)) }]));
      expect(() => rt.adapters.setBatch(['dora'], [1])).toThrow(/E_FORMAT.*emb: DoRA needs the norm .* feature 0/);
      expect(rt.adapters.slots).toEqual([null, null]);
      layer.dispose();
    } finally {
      table.dispose();
      rt.dispose();
    }
  });
});
