import { createLoRA, createReferenceBackend, type LoRABackend } from '@lora/core';
import { overwriteFits } from '@lora/core/backend';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadModel } from './checkpoint.js';
import { buildCheckpoint, CHECKPOINT_PRESETS } from './fixtures.js';
import { appendByConcat, appendInPlace, type KvWrite, kvCapacity } from './kv-cache.js';
import { Sequence } from './sequence.js';
import { referenceRuntime } from './test-support.js';
import '@tensorflow/tfjs-backend-cpu';

/** tfjs "cpu"'s in-place write, as the cpu backend's `overwrite` does it (shared memory refused). */
function hostWrite(): KvWrite & { calls: number } {
  const data = () => (tf.findBackend('cpu') as unknown as { data: { get(id: object): { values: Float32Array; refCount: number } } }).data;
  const write = (t: tf.Tensor, offset: number, values: Float32Array): boolean => {
    write.calls++;
    const d = data().get(t.dataId);
    if (d.refCount !== 1 || !overwriteFits(t, offset, values)) return false;
    d.values.set(values, offset);
    return true;
  };
  write.calls = 0;
  return write;
}

const read = (t: tf.Tensor3D, length: number) => tf.tidy(() => tf.slice(t, [0, 0, 0], [t.shape[0], length, t.shape[2]]).arraySync());

describe('KV cache appends', () => {
  let before: number;
  beforeEach(async () => {
    await tf.setBackend('cpu');
    before = tf.memory().numTensors;
  });
  afterEach(() => expect(tf.memory().numTensors).toBe(before));

  it('kvCapacity leaves an eighth more (at least 64 positions), in 64s, within the context length', () => {
    expect(kvCapacity(1, 4096)).toBe(128);
    expect(kvCapacity(64, 4096)).toBe(128);
    expect(kvCapacity(129, 4096)).toBe(256);
    expect(kvCapacity(2048, 4096)).toBe(2304);
    expect(kvCapacity(100, 120)).toBe(120);
    expect(kvCapacity(130, 120)).toBe(130); // past the context: exactly what is asked (the model refuses it earlier)
  });

  it('writes each step into the same buffer while it has room, then copies into a larger one: the same values as concat', () => {
    const heads = 2;
    const hd = 3;
    const shape = { heads, headDim: hd, maxPositions: 200 };
    const write = hostWrite();
    const rows = (step: number, count: number) => Float32Array.from({ length: count * heads * hd }, (_, i) => step * 1000 + i);
    let inPlace: tf.Tensor3D | undefined;
    let concat: tf.Tensor3D | undefined;
    let length = 0;
    const buffers = new Set<tf.Tensor3D>();
    // A prefill of 60, then single tokens past the first buffer's 128 positions.
    for (const count of [60, ...new Array(80).fill(1)] as number[]) {
      const values = rows(length, count);
      const next = appendInPlace(inPlace, length, { values, start: 0, count }, shape, write);
      const nextConcat = tf.tidy(() => appendByConcat(concat, length, tf.tensor3d(values, [count, heads, hd])));
      if (inPlace !== undefined && next !== inPlace) inPlace.dispose();
      concat?.dispose();
      [inPlace, concat] = [next, nextConcat];
      buffers.add(inPlace);
      length += count;
      expect(concat.shape).toEqual([heads, length, hd]);
    }
    const [first, second] = [...buffers];
    expect(buffers.size).toBe(2);
    expect(first?.isDisposed).toBe(true);
    expect(second?.shape).toEqual([heads, 200, hd]); // kvCapacity(129) = 256, within the context of 200
    expect(read(inPlace as tf.Tensor3D, length)).toEqual(concat?.arraySync());
    // Every single token but the one at position 128 went in place (one write per head): 68 into the
    // first buffer (positions 60–127), 11 into the second.
    expect(write.calls).toBe(2 * 79);
    tf.dispose([inPlace as tf.Tensor3D, concat as tf.Tensor3D]);
  });

  it('a cache it did not make, or one whose memory a clone shares, is copied: the other tensors keep their values', () => {
    const shape = { heads: 1, headDim: 2, maxPositions: 100 };
    const write = hostWrite();
    const foreign = tf.tensor3d([1, 2, 3, 4, 99, 99], [1, 3, 2]); // 2 positions in use, room for a third
    const a = appendInPlace(foreign, 2, { values: Float32Array.of(5, 6), start: 0, count: 1 }, shape, write);
    expect(a).not.toBe(foreign);
    expect(write.calls).toBe(0);
    expect(foreign.arraySync()).toEqual([
      [
        [1, 2],
        [3, 4],
        [99, 99],
      ],
    ]);
    const clone = tf.clone(a);
    const b = appendInPlace(a, 3, { values: Float32Array.of(7, 8), start: 0, count: 1 }, shape, write);
    expect(write.calls).toBe(1); // refused: the clone shares a's memory
    expect(b).not.toBe(a);
    expect(read(b, 4)).toEqual([
      [
        [1, 2],
        [3, 4],
        [5, 6],
        [7, 8],
      ],
    ]);
    expect(read(clone, 4)[0]?.[3]).not.toEqual([7, 8]);
    // Rows of another sequence of the step are skipped: `start` picks this sequence's.
    const c = appendInPlace(b, 4, { values: Float32Array.of(0, 0, 9, 10), start: 1, count: 1 }, shape, write);
    expect(c).toBe(b);
    expect(read(c, 5)[0]?.[4]).toEqual([9, 10]);
    tf.dispose([foreign, a, clone, b]);
  });

  it('concat cuts a cache restored with room to its length first', () => {
    const cache = tf.tensor3d([1, 2, 3, 4, 99, 99], [1, 3, 2]);
    const next = tf.tidy(() => appendByConcat(cache, 2, tf.tensor3d([5, 6], [1, 1, 2])));
    expect(next.arraySync()).toEqual([
      [
        [1, 2],
        [3, 4],
        [5, 6],
      ],
    ]);
    tf.dispose([cache, next]);
  });
});

describe('a model whose backend writes caches in place', () => {
  it('gives the logits bit for bit of one that concatenates: a prefill, a full buffer, caches restored from clones', async () => {
    await tf.setBackend('cpu');
    const before = tf.memory().numTensors;
    const checkpoint = buildCheckpoint({ ...CHECKPOINT_PRESETS['llama-untied'], maxPositionEmbeddings: 160 });
    const write = hostWrite();
    const inPlace: LoRABackend = { ...createReferenceBackend(), hostMemory: true, overwrite: write };
    const runtimes = [await referenceRuntime(), await createLoRA({ backend: inPlace, maxLoras: 2, maxLoraRank: 8, maxCpuLoras: 4 })];
    const models = await Promise.all(runtimes.map(async (runtime) => (await loadModel(checkpoint.files, { runtime })).model));
    const V = checkpoint.config.vocabSize;
    const seqs = models.map(() => [new Sequence(), new Sequence()]);
    const step = (tokens: Int32Array[]) =>
      Promise.all(
        models.map((model, m) => {
          model.runtime.adapters.setBatch(
            tokens.map(() => null),
            tokens.map((t) => t.length),
          );
          return model.forward(tokens.map((t, i) => ({ seq: seqs[m]?.[i] as Sequence, tokens: t })));
        }),
      );
    try {
      const prompt = Int32Array.from({ length: 60 }, (_, i) => (i * 31 + 7) % V);
      let next = [prompt, prompt.slice(0, 5)];
      for (let s = 0; s < 75; s++) {
        const [concat, written] = await step(next);
        expect(Array.from(written as Float32Array)).toEqual(Array.from(concat as Float32Array));
        next = [0, 1].map((i) => Int32Array.of((s * 13 + i * 5) % V));
      }
      const source = seqs[1]?.[0] as Sequence;
      expect(source.length).toBe(134);
      expect(source.kv[0]?.k.shape[1]).toBe(160); // 128 positions first, then the rest of the context
      const writes = write.calls;
      expect(writes).toBeGreaterThan(0);
      // Both models get a third sequence restored from clones of the in-place model's caches (which
      // have room past their length and share its memory): neither may write into the other's.
      for (const list of seqs) {
        const restored = new Sequence();
        for (const c of source.kv) restored.kv.push({ k: tf.clone(c.k), v: tf.clone(c.v) });
        restored.length = source.length;
        list.push(restored);
      }
      for (let s = 0; s < 3; s++) {
        const [concat, written] = await step([0, 1, 2].map((i) => Int32Array.of((s * 7 + i) % V)));
        expect(Array.from(written as Float32Array)).toEqual(Array.from(concat as Float32Array));
      }
    } finally {
      for (const s of seqs.flat()) s.dispose();
      for (const m of models) m.dispose();
      for (const r of runtimes) r.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
