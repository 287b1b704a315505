import { parseSafetensors, parseSafetensorsLayout, serializeSafetensors } from '@lora/core';
import { describe, expect, it } from 'vitest';
import type { RandomAccessFile } from './source.js';
import { readTensors, type TensorRead } from './tensor-reader.js';

/** A file in memory whose reads complete out of order (a random delay each), counting reads in flight. */
function slowFile(bytes: Uint8Array, failAt = -1) {
  let inFlight = 0;
  let most = 0;
  let reads = 0;
  const file: RandomAccessFile = {
    size: bytes.length,
    async read(into, position) {
      const n = reads++;
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((r) => setTimeout(r, Math.random() * 3));
      inFlight--;
      if (n === failAt) throw new Error(`read ${n} failed`);
      into.set(bytes.subarray(position, position + into.length));
    },
    close: async () => {},
  };
  return { file, stats: () => ({ most, reads, inFlight }) };
}

const values = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed + i) * 100);

describe('readTensors', () => {
  it.each(['F32', 'BF16', 'F16'] as const)(
    '%s tensors read in small pieces, out of order, equal what parseSafetensors decodes',
    async (dtype) => {
      const tensors = {
        a: { shape: [37, 5], data: values(185, 1) },
        b: { shape: [3], data: values(3, 2) },
        c: { shape: [0], data: new Float32Array(0) },
      };
      const bytes = serializeSafetensors(tensors, {}, dtype);
      const layout = parseSafetensorsLayout(bytes, bytes.length);
      const reads: TensorRead[] = layout.entries.map((e) => ({
        position: layout.dataStart + e.begin,
        dtype,
        out: new Float32Array(e.shape.reduce((x, y) => x * y, 1)),
      }));
      const { file, stats } = slowFile(bytes);
      let total = 0;
      // 12-byte direct pieces and 10-byte decode pieces (5 BF16 values): every tensor spans several.
      await readTensors(file, reads, (n) => (total += n), { direct: 12, decode: 10 });
      const expected = parseSafetensors(bytes).tensors;
      for (const [i, e] of layout.entries.entries()) {
        expect(Array.from((reads[i] as TensorRead).out)).toEqual(Array.from(expected[e.name]?.data ?? []));
      }
      expect(total).toBe(bytes.length - layout.dataStart);
      expect(stats().most).toBeGreaterThan(1);
      expect(stats().most).toBeLessThanOrEqual(4);
    },
  );

  it('a failed read rejects once the reads in flight have ended, with no unhandled rejection', async () => {
    const bytes = serializeSafetensors({ a: { shape: [64], data: values(64, 3) } }, {}, 'BF16');
    const layout = parseSafetensorsLayout(bytes, bytes.length);
    const { file, stats } = slowFile(bytes, 2);
    const reads: TensorRead[] = [{ position: layout.dataStart, dtype: 'BF16', out: new Float32Array(64) }];
    await expect(readTensors(file, reads, undefined, { direct: 8, decode: 8 })).rejects.toThrow(/read 2 failed/);
    expect(stats().inFlight).toBe(0);
  });
});
