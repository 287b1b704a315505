import { createLoRA } from '@lora/core';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { createWebGLBackend } from './index.js';
import { overwriteOnTexture } from './overwrite.js';

/**
 * `op` run on the GPU, never forwarded to the CPU (tfjs does that for small ops on host data): a
 * binary op's output is then a packed texture where tfjs packs binary ops (its default), an
 * unpacked one with that flag off.
 */
function onTexture(packed: boolean, op: () => tf.Tensor): tf.Tensor {
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
  // Odd sizes leave unused lanes in packed texels and make a slot start mid-row; a squarish texture
  // (more texels than fit one row) splits a slot into a partial row, whole rows and a partial row.
  for (const [label, shape] of [
    ['odd rows and columns', [3, 5, 7]],
    ['one slot (tfjs samples it as a matrix)', [1, 3, 5]],
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
        const t = onTexture(packed, () => tf.add(tf.tensor3d(base, [L, R, C]), tf.scalar(0)));
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
        const last = (L - 1) * size;
        expect(overwriteOnTexture(t, last, again)).toBe(true);
        expected.set(again, last);
        const doubled = tf.tidy(() => tf.mul(t, tf.scalar(2))); // a program reads the texture, not the host copy
        expect(Array.from(await doubled.data())).toEqual(Array.from(expected, (v) => 2 * v));
        expect(Array.from(await t.data())).toEqual(Array.from(expected));
        tf.dispose([t, doubled]);
      }, 120_000);
    }
  }

  it('refuses what it must not write, writing nothing: shared data, a slice view, another dtype, a range past the tensor, part of a packed matrix', async () => {
    const rt = await createLoRA({ backend: createWebGLBackend(), maxLoras: 1, maxLoraRank: 1 });
    const t = onTexture(true, () => tf.add(tf.zeros([2, 2, 2]), tf.scalar(0)));
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
      // A continuous slice of an unpacked texture is a view on it (same texture and host array): it must not change.
      const u = onTexture(false, () => tf.add(tf.zeros([2, 2, 2]), tf.scalar(0)));
      const view = onTexture(false, () => tf.slice(u, [1, 0, 0], [1, 2, 2]));
      expect(overwriteOnTexture(u, 4, Float32Array.of(1, 2, 3, 4))).toBe(false);
      expect(overwriteOnTexture(view, 0, Float32Array.of(1, 2, 3, 4))).toBe(false);
      expect(Array.from(await view.data())).toEqual([0, 0, 0, 0]);
      view.dispose();
      expect(overwriteOnTexture(u, 4, Float32Array.of(1, 2, 3, 4))).toBe(true);
      expect(Array.from(await u.data())).toEqual([0, 0, 0, 0, 1, 2, 3, 4]);
      u.dispose();
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
