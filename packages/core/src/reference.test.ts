import { describe, expect, it } from 'vitest';
import { maxRelativeRowError, referenceEmbedding, referenceExpand, referenceLoRALinear, referenceShrink } from './reference.js';

describe('float64 reference', () => {
  // L = 2 slots, R = 1, H = 2; slot 1's A row is [1, 2], its B column (O = 2) is [3, 4].
  const loraA = [new Float32Array([0, 0, 1, 2])];
  const loraB = [new Float32Array([0, 0, 3, 4])];

  it('shrink: scale · A[slot] · x, zero rows for -1 tokens', () => {
    const r = referenceShrink({ x: [1, 1, 5, 6], numTokens: 2, hidden: 2, loraA, rank: 1, tokenLoraIndices: [1, -1], scale: 2 });
    expect(Array.from(r.out)).toEqual([6, 0]);
    expect(r.rowScale[0]).toBeCloseTo(Math.hypot(2, 4));
    expect(r.rowScale[1]).toBe(0);
  });

  it('expand: adds or writes the slice columns of LoRA tokens only', () => {
    const args = { y: [1, 1, 1, 1, 1, 1], numTokens: 2, width: 3, x: [2, 7], loraB, outputSlices: [2], rank: 1, tokenLoraIndices: [1, -1] };
    expect(Array.from(referenceExpand({ ...args, offsetStart: 1 }).out)).toEqual([1, 7, 9, 1, 1, 1]);
    expect(Array.from(referenceExpand({ ...args, addInputs: false }).out)).toEqual([6, 8, 1, 1, 1, 1]);
  });

  it('linear and embedding compose shrink and expand', () => {
    const lin = referenceLoRALinear({
      x: [1, 1],
      numTokens: 1,
      hidden: 2,
      loraA,
      rank: 1,
      tokenLoraIndices: [1],
      scale: 1,
      y: [0, 0],
      width: 2,
      loraB,
      outputSlices: [2],
    });
    expect(Array.from(lin.out)).toEqual([9, 12]);
    // A as [L, V, R] with V = 2: slot 1, token 1 → A row value 2.
    const emb = referenceEmbedding({
      y: [0, 0],
      numTokens: 1,
      width: 2,
      tokenIds: [1],
      loraA: [0, 0, 1, 2],
      vocab: 2,
      loraB: loraB[0]!,
      rank: 1,
      tokenLoraIndices: [1],
    });
    expect(Array.from(emb.out)).toEqual([6, 8]);
  });

  it('maxRelativeRowError: relative where written, exact where not, NaN never passes', () => {
    const ref = { out: new Float64Array([10, 0]), rowScale: new Float64Array([10, 0]), rows: 2, cols: 1 };
    expect(maxRelativeRowError([10.001, 0], ref)).toBeCloseTo(1e-4);
    expect(maxRelativeRowError([10, 1e-30], ref)).toBe(Number.POSITIVE_INFINITY);
    expect(maxRelativeRowError([Number.NaN, 0], ref)).toBe(Number.POSITIVE_INFINITY);
  });

  it('rejects inconsistent sizes', () => {
    expect(() => referenceShrink({ x: [1], numTokens: 2, hidden: 2, loraA, rank: 1, tokenLoraIndices: [0, 0], scale: 1 })).toThrow(
      /E_SHAPE/,
    );
    expect(() => referenceShrink({ x: [1, 1], numTokens: 1, hidden: 2, loraA, rank: 1, tokenLoraIndices: [2], scale: 1 })).toThrow(
      /E_INDEX/,
    );
  });
});
