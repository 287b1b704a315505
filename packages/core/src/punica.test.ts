import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { LoRABackend } from './backend.js';
import { createLoRA, type LoRARuntime } from './create.js';
import { createReferenceBackend } from './reference-backend.js';

tf.env().set('IS_TEST', true);

describe('PunicaWrapper fast paths and guards (core only, reference backend)', () => {
  let rt: LoRARuntime;
  let backend: LoRABackend;
  const x = tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2]);
  const y = tf.tensor2d([1, 1, 1, 1, 1, 1], [3, 2]);
  const a = tf.ones([2, 1, 2]) as tf.Tensor3D;
  const b = tf.ones([2, 2, 1]) as tf.Tensor3D;

  beforeAll(async () => {
    await tf.setBackend('cpu');
    backend = createReferenceBackend();
    rt = await createLoRA({ backend, maxLoras: 2, maxLoraRank: 1 });
  });
  afterAll(() => rt.dispose());

  it('a batch with no LoRA token launches no kernel and returns new tensors', async () => {
    const shrink = vi.spyOn(backend, 'shrink');
    const expand = vi.spyOn(backend, 'expand');
    rt.punica.updateMetadata({ tokenLoraIndices: [-1, -1, -1] });
    const s = rt.punica.shrink(x, [a], 1);
    expect(s.shape).toEqual([1, 3, 1]);
    expect(Array.from(await s.data())).toEqual([0, 0, 0]);
    const out = rt.punica.addLoRALinear(y, x, [a], [b], 1, [2]);
    expect(out).not.toBe(y);
    expect(Array.from(await out.data())).toEqual([1, 1, 1, 1, 1, 1]);
    out.dispose();
    expect(y.isDisposed).toBe(false);
    expect(shrink).not.toHaveBeenCalled();
    expect(expand).not.toHaveBeenCalled();
    tf.dispose([s]);
    vi.restoreAllMocks();
  });

  it('addLoRALinear is one shrink and one expand for the whole batch, with no temporaries left', async () => {
    const shrink = vi.spyOn(backend, 'shrink');
    const expand = vi.spyOn(backend, 'expand');
    rt.punica.updateMetadata({ tokenLoraIndices: [0, 1, -1] });
    const before = tf.memory().numTensors;
    const out = rt.punica.addLoRALinear(y, x, [a], [b], 2, [2]);
    expect(tf.memory().numTensors).toBe(before + 1);
    expect(Array.from(await out.data())).toEqual([7, 7, 15, 15, 1, 1]);
    expect(shrink).toHaveBeenCalledTimes(1);
    expect(expand).toHaveBeenCalledTimes(1);
    out.dispose();
    vi.restoreAllMocks();
  });

  it('passes slotRanks to the kernels as an Int32Array, and refuses bad ones before any kernel runs', async () => {
    const shrink = vi.spyOn(backend, 'shrink');
    const expand = vi.spyOn(backend, 'expand');
    rt.punica.updateMetadata({ tokenLoraIndices: [0, 1, -1] });
    const out = rt.punica.addLoRALinear(y, x, [a], [b], 2, [2], [1, 0]);
    expect(Array.from(shrink.mock.calls[0]?.[0].slotRanks ?? [])).toEqual([1, 0]);
    expect(Array.from(expand.mock.calls[0]?.[0].slotRanks ?? [])).toEqual([1, 0]);
    out.dispose();
    const before = tf.memory().numTensors;
    const refused = (ranks: unknown) => () => rt.punica.addLoRALinear(y, x, [a], [b], 1, [2], ranks as number[]);
    expect(refused([1])).toThrow(
      expect.objectContaining({ code: 'E_SHAPE', message: expect.stringMatching(/one rank per slot \(maxLoras = 2\), got 1/) }),
    );
    expect(refused([1, 2])).toThrow(
      expect.objectContaining({ code: 'E_RANK', message: expect.stringMatching(/slotRanks\[1\] is 2; .*\[0, 1\]/) }),
    );
    expect(refused(Int32Array.of(-1, 0))).toThrow(expect.objectContaining({ code: 'E_RANK' }));
    expect(refused([0.5, 1])).toThrow(expect.objectContaining({ code: 'E_RANK' }));
    expect(refused(new Array(1e6).fill(0))).toThrow(expect.objectContaining({ code: 'E_CAPACITY' }));
    expect(refused('11')).toThrow(expect.objectContaining({ code: 'E_SHAPE' }));
    expect(() => rt.punica.shrink(x, [a], 1, [3, 3])).toThrow(expect.objectContaining({ code: 'E_RANK' }));
    const shrunk = tf.zeros([1, 3, 1]) as tf.Tensor3D;
    expect(() => rt.punica.addExpand(y, shrunk, [b], [2], { slotRanks: [1] })).toThrow(expect.objectContaining({ code: 'E_SHAPE' }));
    shrunk.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(shrink).toHaveBeenCalledTimes(1);
    vi.restoreAllMocks();
  });

  it("bLayout 'slot-rank': passed to the kernels where the backend reads it; refused before any kernel runs elsewhere", async () => {
    rt.punica.updateMetadata({ tokenLoraIndices: [0, 1, -1] });
    const before = tf.memory().numTensors;
    const shrunk = tf.zeros([1, 3, 1]) as tf.Tensor3D;
    const calls = [
      (o: unknown) => () => rt.punica.addLoRALinear(y, x, [a], [b], 1, [2], [1, 1], o as { bLayout: 'slot-rank' }),
      (o: unknown) => () => rt.punica.addLoRALogits(y, x, a, b, 1, [1, 1], o as { bLayout: 'slot-rank' }),
      (o: unknown) => () => rt.punica.addExpand(y, shrunk, [b], [2], { slotRanks: [1, 1], ...(o as object) }),
    ];
    for (const call of calls) {
      // The reference backend reads the padded layout only.
      expect(call({ bLayout: 'slot-rank' })).toThrow(
        expect.objectContaining({ code: 'E_UNSUPPORTED', message: expect.stringMatching(/backend "reference" .*padded.*slot-rank/) }),
      );
      expect(call({ bLayout: 'compact' })).toThrow(
        expect.objectContaining({
          code: 'E_CONFIG',
          message: expect.stringMatching(/bLayout must be 'padded' or 'slot-rank', got "compact"/),
        }),
      );
    }
    expect(() => rt.punica.addLoRALinear(y, x, [a], [b], 1, [2], [1, 1], 7 as never)).toThrow(expect.objectContaining({ code: 'E_SHAPE' }));
    const hostile = Object.defineProperty({}, 'bLayout', {
      get() {
        throw new Error('boom');
      },
    });
    expect(calls[0]?.(hostile)).toThrow(
      expect.objectContaining({ code: 'E_SHAPE', message: expect.stringMatching(/could not be read.*boom/) }),
    );

    const reads: LoRABackend = { ...createReferenceBackend(), readsSlotRankB: true };
    const other = await createLoRA({ backend: reads, maxLoras: 2, maxLoraRank: 1 });
    try {
      const expand = vi.spyOn(reads, 'expand');
      other.punica.updateMetadata({ tokenLoraIndices: [0, 1, -1] });
      // slot-rank needs slotRanks: they give each slot's row stride.
      expect(() => other.punica.addLoRALinear(y, x, [a], [b], 1, [2], undefined, { bLayout: 'slot-rank' })).toThrow(
        expect.objectContaining({ code: 'E_SHAPE', message: expect.stringMatching(/needs slotRanks/) }),
      );
      expect(expand).not.toHaveBeenCalled();
      other.punica.addLoRALinear(y, x, [a], [b], 1, [2], [1, 1], { bLayout: 'slot-rank' }).dispose();
      other.punica.addLoRALinear(y, x, [a], [b], 1, [2], [1, 1]).dispose();
      expect(expand.mock.calls.map((c) => c[0].bLayout)).toEqual(['slot-rank', 'padded']);
    } finally {
      other.dispose();
      vi.restoreAllMocks();
    }
    shrunk.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a layer no adapter of the batch targets (every active slot of rank 0) launches no kernel', async () => {
    const shrink = vi.spyOn(backend, 'shrink');
    const expand = vi.spyOn(backend, 'expand');
    rt.punica.updateMetadata({ tokenLoraIndices: [1, 1, -1] });
    const before = tf.memory().numTensors;
    const out = rt.punica.addLoRALinear(y, x, [a], [b], 1, [2], [1, 0]);
    const logits = rt.punica.addLoRALogits(y, x, a, b, 1, [1, 0]);
    expect(Array.from(await out.data())).toEqual(Array.from(await y.data()));
    expect(shrink).not.toHaveBeenCalled();
    expect(expand).not.toHaveBeenCalled();
    // Slot 1 with rank 1 does run.
    const used = rt.punica.addLoRALinear(y, x, [a], [b], 1, [2], [0, 1]);
    expect(expand).toHaveBeenCalledTimes(1);
    tf.dispose([out, logits, used]);
    expect(tf.memory().numTensors).toBe(before);
    vi.restoreAllMocks();
  });

  it('meta exposes the grouping computed once per batch', () => {
    rt.punica.updateMetadata({ tokenLoraIndices: [1, 1, 1] });
    const m = rt.punica.meta;
    expect(m.singleLoRA).toBe(true);
    expect(m.segments).toEqual([{ slot: 1, start: 0, length: 3 }]);
    expect(rt.punica.meta).toBe(m);
  });

  it('E_BACKEND when the active tfjs backend is not the one the LoRA backend computes on', async () => {
    const other = await createLoRA({ backend: { ...createReferenceBackend(), tfBackend: 'webgl' }, maxLoras: 2, maxLoraRank: 1 });
    other.punica.updateMetadata({ tokenLoraIndices: [0, 0, 0] });
    expect(() => other.punica.shrink(x, [a], 1)).toThrow(
      /computes on tfjs backend "webgl" but the active tfjs backend is "cpu"; call tf.setBackend\("webgl"\)/,
    );
    other.dispose();
  });

  it('runtime.dispose() disposes the backend once', async () => {
    const owned = createReferenceBackend();
    const dispose = vi.spyOn(owned, 'dispose');
    const r = await createLoRA({ backend: owned });
    r.dispose();
    r.dispose();
    expect(dispose).toHaveBeenCalledTimes(1);
    expect(r.punica.isDisposed).toBe(true);
  });
});
