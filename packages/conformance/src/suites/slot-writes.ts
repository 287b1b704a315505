import { LoRALinear } from '@lora/core';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { type BackendCapabilities, type BackendFactory, makeRuntime } from '../harness.js';

const read = async (t: tf.Tensor): Promise<number[]> => Array.from(await t.data());

/**
 * Slot-only uploads (`LoRABackend.overwrite`, issue #17): activating an adapter writes its slot of
 * the live stacks in place — the same tensor before and after, no tensor made — and the result is
 * what a stack made anew would hold. A forward issued before the write still reads the old slot
 * (GPU backends queue work: the write must come after it); a stack that was read back (tfjs then
 * caches its values on the host beside the device copy) gets the write in both; a stack someone
 * disposed, or whose memory another tensor shares (a reshape; a clone on some backends), is made anew
 * from the host mirror, and the other tensor keeps its values. Backends without `overwrite` skip, with the reason.
 */
export function slotWriteSuite(factory: BackendFactory, caps: BackendCapabilities): void {
  describe('slot-only uploads (overwrite)', () => {
    it(
      'a slot write reaches the live stack in place, after the work issued before it; a rebuilt stack agrees',
      async ({ skip }) => {
        const rt = await makeRuntime(factory, { maxLoras: 3, maxLoraRank: 2 });
        const w = tf.ones([4, 3]) as tf.Tensor2D;
        const layer = new LoRALinear(rt, { module: 'o_proj', weight: w });
        const x = tf.tensor2d([[1, 1, 1]]);
        try {
          if (rt.backend.overwrite === undefined) skip(`${rt.backend.name} makes a stack anew after a slot write (no overwrite)`);
          layer.setLoRA(0, Float32Array.of(1, 2, 3), new Float32Array(4).fill(1));
          const before = layer.loraA[0] as tf.Tensor3D;
          await before.data(); // on the device (and cached on the host) before the writes below
          rt.punica.updateMetadata({ tokenLoraIndices: Int32Array.of(0) });
          // Issued before the write: x·W + B·A·x = 3 + 6 per output, whenever the device runs it.
          const early = layer.forward(x);
          const tensors = tf.memory().numTensors;
          layer.setLoRA(0, Float32Array.of(10, 20, 30), new Float32Array(4).fill(1));
          layer.setLoRA(2, Float32Array.of(7, 8, 9, 10, 11, 12), new Float32Array(8).fill(2));
          const after = layer.loraA[0] as tf.Tensor3D;
          expect(after).toBe(before); // written in place, not made anew
          expect(tf.memory().numTensors).toBe(tensors);
          expect(await read(early)).toEqual([9, 9, 9, 9]);
          const late = layer.forward(x);
          expect(await read(late)).toEqual([63, 63, 63, 63]);
          tf.dispose([early, late]);
          expect(await read(after)).toEqual([10, 20, 30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 8, 9, 10, 11, 12]);
          expect((await read(layer.loraB[0] as tf.Tensor3D)).slice(16)).toEqual(new Array(8).fill(2));
          // Read back just now: a write must reach the host copy as well as the device's.
          layer.setLoRA(0, Float32Array.of(100, 200, 300), new Float32Array(4).fill(1));
          expect(layer.loraA[0]).toBe(before);
          const third = layer.forward(x);
          expect(await read(third)).toEqual([603, 603, 603, 603]);
          third.dispose();
          expect((await read(before)).slice(0, 3)).toEqual([100, 200, 300]);
          // A stack someone disposed cannot be written in place: the next read makes it anew from the mirror.
          before.dispose();
          layer.resetLoRA(2);
          const rebuilt = layer.loraA[0] as tf.Tensor3D;
          expect(rebuilt).not.toBe(before);
          expect(await read(rebuilt)).toEqual([100, 200, 300, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
          // Tensors made from the stack keep their values: a reshape shares its memory on every backend
          // (the stack is then made anew), a clone does on some.
          const alias = tf.reshape(rebuilt, [-1]);
          const clone = tf.clone(rebuilt);
          layer.setLoRA(0, Float32Array.of(4, 5, 6), new Float32Array(4).fill(1));
          const fresh = layer.loraA[0] as tf.Tensor3D;
          expect(fresh).not.toBe(rebuilt);
          expect((await read(fresh)).slice(0, 3)).toEqual([4, 5, 6]);
          expect((await read(alias)).slice(0, 3)).toEqual([100, 200, 300]);
          expect((await read(clone)).slice(0, 3)).toEqual([100, 200, 300]);
          tf.dispose([alias, clone]);
        } finally {
          layer.dispose();
          tf.dispose([w, x]);
          rt.dispose();
        }
      },
      caps.timeoutMs ?? 60_000,
    );
  });
}
