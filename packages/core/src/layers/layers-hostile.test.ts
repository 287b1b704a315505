import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLoRA, type LoRARuntime } from '../create.js';
import { createReferenceBackend } from '../reference-backend.js';
import { codeOf } from '../test-support.js';
import { LoRAEmbedding } from './embedding.js';
import { LoRALinear, LoRALogits, MergedLoRALinear } from './linear.js';

tf.env().set('IS_TEST', true);

describe('layers refuse bad input before touching tfjs, and leak nothing when they refuse', () => {
  let rt: LoRARuntime;
  let owned: tf.Tensor[];
  beforeEach(async () => {
    // weightLayout 'in-out': the layer keeps a transposed copy of W, the allocation a failed constructor must not leak.
    rt = await createLoRA({ backend: { ...createReferenceBackend(), weightLayout: 'in-out' }, maxLoras: 2, maxLoraRank: 4 });
    owned = [];
  });
  afterEach(() => {
    rt.dispose();
    tf.dispose(owned);
  });
  const w = (rows: number, cols: number) => {
    const t = tf.ones([rows, cols]) as tf.Tensor2D;
    owned.push(t);
    return t;
  };

  it('a constructor that refuses (module taken, bad bias, slot budget) allocates nothing', async () => {
    new LoRALinear(rt, { module: 'm.a', weight: w(3, 2) });
    const before = tf.memory().numTensors;
    const weight = w(3, 2);
    const bias = tf.ones([4]) as tf.Tensor1D;
    owned.push(bias);
    expect(codeOf(() => new LoRALinear(rt, { module: 'm.a', weight }))).toBe('E_CONFIG');
    expect(codeOf(() => new LoRALinear(rt, { module: 'm.b', weight, bias }))).toBe('E_SHAPE');
    expect(tf.memory().numTensors - before).toBe(2); // the test's own weight and bias, nothing the layers made
    const small = await createLoRA({ backend: createReferenceBackend(), maxLoras: 8, maxLoraRank: 64, maxSlotMemory: 1_000_000 });
    try {
      const bigW = w(512, 512);
      const beforeBig = tf.memory().numTensors;
      let message = '';
      try {
        new LoRALinear(small, { module: 'big', weight: bigW });
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toMatch(/E_CAPACITY.*layer big .* needs 4194304 bytes of adapter slots.*passes maxSlotMemory = 1000000/);
      expect(tf.memory().numTensors).toBe(beforeBig);
      expect(small.adapters.slotMemory).toBe(0);
    } finally {
      small.dispose();
    }
  });

  it('forward checks x (shape, dtype, rows of the batch) before the base matmul', () => {
    const layer = new MergedLoRALinear(rt, { modules: ['q', 'k'], outputSizes: [2, 1], weight: w(3, 4) });
    expect(codeOf(() => layer.forward(w(1, 4)))).toBe('E_INDEX'); // no batch yet
    rt.punica.updateMetadata({ tokenLoraIndices: [0, -1] });
    const before = tf.memory().numTensors;
    expect(codeOf(() => layer.forward(w(2, 5)))).toBe('E_SHAPE');
    expect(codeOf(() => layer.forward(w(3, 4)))).toBe('E_INDEX');
    const ints = tf.zeros([2, 4], 'int32') as tf.Tensor2D;
    owned.push(ints);
    expect(codeOf(() => layer.forward(ints))).toBe('E_UNSUPPORTED');
    expect(tf.memory().numTensors - before).toBe(3); // the three inputs made above, nothing else
  });

  it('an embedding checks ids before the gather (a wrong id is E_INDEX, not a tfjs error)', () => {
    const emb = new LoRAEmbedding(rt, { module: 'embed', weight: w(5, 3) });
    rt.punica.updateMetadata({ tokenLoraIndices: [0, 1] });
    const ids = tf.tensor1d([1, 9], 'int32');
    owned.push(ids);
    expect(() => emb.forward(ids as tf.Tensor1D)).toThrow(/E_INDEX.*tokenIds\[1\] is 9.*V = 5/);
  });

  it('after runtime.dispose() every layer call is E_DISPOSED and rebuilds nothing', () => {
    const layer = new LoRALinear(rt, { module: 'o', weight: w(2, 2) });
    const emb = new LoRAEmbedding(rt, { module: 'e', weight: w(4, 2) });
    rt.punica.updateMetadata({ tokenLoraIndices: [0] });
    const x = w(1, 2);
    const ids = tf.tensor1d([1], 'int32') as tf.Tensor1D;
    owned.push(ids);
    rt.dispose();
    const before = tf.memory().numTensors;
    expect(codeOf(() => layer.forward(x))).toBe('E_DISPOSED');
    expect(codeOf(() => emb.forward(ids))).toBe('E_DISPOSED');
    expect(codeOf(() => layer.setLoRA(0, new Float32Array(2), new Float32Array(2)))).toBe('E_DISPOSED');
    expect(codeOf(() => emb.setLoRA(0, new Float32Array(4), new Float32Array(2)))).toBe('E_DISPOSED');
    expect(tf.memory().numTensors).toBe(before);
  });

  it("a forward after a caller disposed one of the layer's stacks is E_DISPOSED naming the layer and the stack; nothing leaks", () => {
    const o = new LoRALinear(rt, { module: 'o', weight: w(2, 2) });
    const head = new LoRALogits(rt, { module: 'lm_head', weight: w(3, 2) });
    rt.punica.updateMetadata({ tokenLoraIndices: [0] });
    const x = w(1, 2);
    // The stacks are made on first use: made here, so that the count below sees only the calls.
    o.loraB[0]?.dispose();
    head.loraA[0]?.dispose();
    expect([...o.loraA, ...head.loraB].every((t) => !t.isDisposed)).toBe(true);
    const before = tf.memory().numTensors;
    expect(() => o.forward(x)).toThrow(/E_DISPOSED.*layer o: its loraB\[0\] stack was disposed/);
    expect(() => head.forward(x)).toThrow(/E_DISPOSED.*layer lm_head: its loraA\[0\] stack was disposed/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it("a layer's public slice widths and B layout cannot be changed under its kernels (they read them unchecked)", () => {
    const layer = new MergedLoRALinear(rt, { modules: ['q', 'k'], outputSizes: [2, 1], weight: w(3, 2) });
    expect(() => {
      (layer.outputSizes as number[])[0] = 1e6;
    }).toThrow(TypeError);
    expect(() => {
      (layer as unknown as { bLayout: string }).bLayout = 'slot-rank';
    }).toThrow(TypeError);
    expect([layer.outputSizes, layer.bLayout]).toEqual([[2, 1], 'padded']);
  });

  it("a subclass's addLoRA(y, x) checks both (forward checks x itself and skips them)", () => {
    class Probe extends LoRALinear {
      call(y: tf.Tensor2D, x: tf.Tensor2D): tf.Tensor2D {
        return this.addLoRA(y, x);
      }
    }
    const layer = new Probe(rt, { module: 'o', weight: w(2, 3) });
    rt.punica.updateMetadata({ tokenLoraIndices: [0] });
    const before = tf.memory().numTensors;
    expect(() => layer.call(w(1, 2), w(1, 4))).toThrow(/E_SHAPE.*x must be \[T, H = 3\] for layer o, got shape \[1, 4\]/);
    expect(() => layer.call(w(1, 5), w(1, 3))).toThrow(/E_SHAPE.*y must be \[T = 1, O = 2\] for layer o, got shape \[1, 5\]/);
    expect(() => layer.call(w(1, 2), w(2, 3))).toThrow(/E_INDEX.*the input has 2 rows but the current batch has 1/);
    expect(tf.memory().numTensors).toBe(before + 6);
    const out = layer.call(w(1, 2), w(1, 3));
    expect(out.shape).toEqual([1, 2]);
    out.dispose();
  });

  it('setLoRA refuses a disposed tensor and a non-finite scale with a LoRAError', () => {
    const layer = new LoRALinear(rt, { module: 'o', weight: w(2, 2) });
    const a = tf.ones([1, 2]) as tf.Tensor2D;
    a.dispose();
    expect(codeOf(() => layer.setLoRA(0, a, new Float32Array(2)))).toBe('E_DISPOSED');
    expect(codeOf(() => layer.setLoRA(0, new Float32Array(2), new Float32Array(2), Number.NaN))).toBe('E_CONFIG');
  });
});

describe('linear layers take their weight in either layout', () => {
  it('[O, H] and [H, O] give the same output on both backend layouts, and a matching layout costs no copy', async () => {
    const x = tf.tensor2d([0.5, -1, 2, 0.25, 1, -0.5], [2, 3]);
    const wOutIn = tf.tensor2d([1, 2, 3, -1, 0.5, 4, 2, 2, -2, 0, 1, 1], [4, 3]);
    const wInOut = tf.transpose(wOutIn) as tf.Tensor2D;
    const outputs: number[][] = [];
    try {
      for (const weightLayout of ['out-in', 'in-out'] as const) {
        const rt = await createLoRA({ backend: { ...createReferenceBackend(), weightLayout }, maxLoras: 1, maxLoraRank: 2 });
        try {
          for (const [layout, weight] of [
            ['out-in', wOutIn],
            ['in-out', wInOut],
          ] as const) {
            const before = tf.memory().numTensors;
            const layer = new MergedLoRALinear(rt, { modules: [`q.${layout}`, `k.${layout}`], outputSizes: [3, 1], weight, layout });
            // A transposed copy only when the backend needs [H, O] and was given [O, H] (stacks are made lazily).
            expect(tf.memory().numTensors - before).toBe(weightLayout === 'in-out' && layout === 'out-in' ? 1 : 0);
            rt.punica.updateMetadata({ tokenLoraIndices: [-1, -1] });
            const y = layer.forward(x);
            outputs.push(Array.from(await y.data()));
            y.dispose();
            layer.dispose();
          }
        } finally {
          rt.dispose();
        }
      }
      for (const o of outputs) expect(o).toEqual(outputs[0]);
      expect(outputs[0]?.slice(0, 4)).toEqual([4.5, 7, -5, 1]); // x[0]·Wᵀ by hand
    } finally {
      tf.dispose([x, wOutIn, wInOut]);
    }
  });
});
