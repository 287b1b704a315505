import { createLoRA, LoRALinear } from '@lora/core';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { createWebGLBackend } from './index.js';
import { overwriteOnTexture } from './overwrite.js';

/**
 * A binary op's output in a texture: packed where tfjs packs binary ops (its default), unpacked
 * with that flag off; never computed on the CPU (tfjs forwards small ops on host data there).
 */
function packedOrNot(packed: boolean, op: () => tf.Tensor): tf.Tensor {
  const flags = { WEBGL_PACK_BINARY_OPERATIONS: packed, WEBGL_CPU_FORWARD: false };
  const before = Object.fromEntries(Object.keys(flags).map((f) => [f, tf.env().getBool(f)]));
  tf.env().setFlags(flags);
  try {
    return tf.tidy(op);
  } finally {
    tf.env().setFlags(before);
  }
}

const range = (n: number, from = 1) => Float32Array.from({ length: n }, (_, i) => from + i);

describe('webgl slot-only uploads (overwrite)', () => {
  it('a slot write reaches the live stack in place, after the draws issued before it; a rebuilt stack agrees', async () => {
    const rt = await createLoRA({ backend: createWebGLBackend(), maxLoras: 3, maxLoraRank: 2 });
    const w = tf.ones([4, 3]) as tf.Tensor2D;
    const layer = new LoRALinear(rt, { module: 'o_proj', weight: w });
    const x = tf.tensor2d([[1, 1, 1]]);
    try {
      layer.setLoRA(0, Float32Array.of(1, 2, 3), new Float32Array(4).fill(1));
      const before = layer.loraA[0] as tf.Tensor3D;
      rt.punica.updateMetadata({ tokenLoraIndices: Int32Array.of(0) });
      // Issued before the write (its draw reads the uploaded texture): x·W + B·A·x = 3 + 6 per output.
      const early = layer.forward(x);
      const tensors = tf.memory().numTensors;
      layer.setLoRA(0, Float32Array.of(10, 20, 30), new Float32Array(4).fill(1));
      layer.setLoRA(2, Float32Array.of(7, 8, 9, 10, 11, 12), new Float32Array(8).fill(2));
      const after = layer.loraA[0] as tf.Tensor3D;
      expect(after).toBe(before); // written in place, not made anew
      expect(tf.memory().numTensors).toBe(tensors);
      expect(Array.from(await early.data())).toEqual([9, 9, 9, 9]);
      const late = layer.forward(x);
      expect(Array.from(await late.data())).toEqual([63, 63, 63, 63]);
      tf.dispose([early, late]);
      expect(Array.from(await after.data())).toEqual([10, 20, 30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 8, 9, 10, 11, 12]);
      expect(Array.from(await (layer.loraB[0] as tf.Tensor3D).data()).slice(16)).toEqual(new Array(8).fill(2));
      // Read back, tfjs keeps the values on the host beside the texture: a write must reach both.
      layer.setLoRA(0, Float32Array.of(100, 200, 300), new Float32Array(4).fill(1));
      expect(layer.loraA[0]).toBe(before);
      const third = layer.forward(x);
      expect(Array.from(await third.data())).toEqual([603, 603, 603, 603]);
      third.dispose();
      expect(Array.from(await before.data()).slice(0, 3)).toEqual([100, 200, 300]);
      // A stack someone disposed cannot be written in place: the next read makes it anew from the mirror.
      before.dispose();
      layer.resetLoRA(2);
      const rebuilt = layer.loraA[0] as tf.Tensor3D;
      expect(rebuilt).not.toBe(before);
      expect(Array.from(await rebuilt.data())).toEqual([100, 200, 300, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    } finally {
      layer.dispose();
      tf.dispose([w, x]);
      rt.dispose();
    }
  }, 120_000);

  // Odd sizes leave unused lanes in packed texels and make a slot start mid-row; a squarish texture
  // (more texels than fit one row) splits a slot into a partial row, whole rows and a partial row.
  for (const [label, shape] of [
    ['odd rows and columns', [3, 5, 7]],
    ['one texel column', [4, 3, 1]],
    ['a texture wider than one slot', [5, 2, 3]],
    ['a texture wider than the maximum (squarish: slots split across rows)', [3, 2, 33000]],
  ] as const) {
    for (const packed of [true, false]) {
      it(`${label} ${JSON.stringify(shape)}, ${packed ? 'packed' : 'unpacked'}: each slot written reads back, the others unchanged`, async () => {
        await createLoRA({ backend: createWebGLBackend(), maxLoras: 1, maxLoraRank: 1 }).then((rt) => rt.dispose());
        const [L, R, C] = shape;
        const size = R * C;
        const base = range(L * size);
        const t = packedOrNot(packed, () => tf.add(tf.tensor3d(base, [L, R, C]), tf.scalar(0)));
        const texData = (
          tf.backend() as unknown as { texData: { get(id: object): { isPacked?: boolean; texture?: unknown } } }
        ).texData.get(t.dataId);
        expect(texData?.isPacked === true).toBe(packed);
        expect(texData?.texture).toBeTruthy();
        const expected = Float32Array.from(base);
        for (const slot of [L - 1, 0]) {
          const values = range(size, -1000 * (slot + 1));
          expect(overwriteOnTexture(t, slot * size, values)).toBe(true);
          expected.set(values, slot * size);
          expect(Array.from(await t.data())).toEqual(Array.from(expected));
        }
        // After a read-back tfjs holds the values on the host too: both must change.
        const again = range(size, 5000);
        expect(overwriteOnTexture(t, size, again)).toBe(true);
        expected.set(again, size);
        const doubled = tf.tidy(() => tf.mul(t, tf.scalar(2))); // a program reads the texture, not the host copy
        expect(Array.from(await doubled.data())).toEqual(Array.from(expected, (v) => 2 * v));
        expect(Array.from(await t.data())).toEqual(Array.from(expected));
        tf.dispose([t, doubled]);
      }, 120_000);
    }
  }

  it('refuses what it must not write, writing nothing: shared data, another dtype, a range past the tensor, part of a packed matrix', async () => {
    const rt = await createLoRA({ backend: createWebGLBackend(), maxLoras: 1, maxLoraRank: 1 });
    const t = packedOrNot(true, () => tf.add(tf.zeros([2, 2, 2]), tf.scalar(0)));
    const ints = tf.zeros([4], 'int32');
    try {
      await t.data();
      expect(overwriteOnTexture(t, 7, Float32Array.of(1, 2))).toBe(false);
      expect(overwriteOnTexture(t, -1, Float32Array.of(1))).toBe(false);
      expect(overwriteOnTexture(ints, 0, Float32Array.of(1))).toBe(false);
      expect(overwriteOnTexture(t, 1, Float32Array.of(1, 2, 3, 4))).toBe(false); // not a whole [2, 2] matrix
      const alias = tf.clone(t); // same data, refCount 2
      expect(overwriteOnTexture(t, 0, Float32Array.of(1, 2, 3, 4))).toBe(false);
      alias.dispose();
      expect(Array.from(await t.data())).toEqual(new Array(8).fill(0));
      expect(overwriteOnTexture(t, 4, Float32Array.of(1, 2, 3, 4))).toBe(true);
      const read = tf.tidy(() => tf.mul(t, tf.scalar(1)));
      expect(Array.from(await read.data())).toEqual([0, 0, 0, 0, 1, 2, 3, 4]);
      read.dispose();
    } finally {
      tf.dispose([t, ints]);
      rt.dispose();
    }
  }, 120_000);
});
