import { describe, expect, it } from 'vitest';
import { adapterStart, lastOccurrence } from './invocation.js';

/** The definition, by brute force. */
function naive(tokens: number[], pattern: number[]): number {
  for (let i = tokens.length - pattern.length; i >= 0; i--) if (pattern.every((p, j) => tokens[i + j] === p)) return i;
  return -1;
}

describe('activated LoRA: the last occurrence of the invocation tokens', () => {
  it('agrees with the definition on random and repetitive sequences', () => {
    let seed = 7;
    const next = (m: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % m;
    };
    for (let trial = 0; trial < 2000; trial++) {
      const alphabet = 1 + next(3);
      const tokens = Array.from({ length: next(40) }, () => next(alphabet));
      const pattern = Array.from({ length: 1 + next(5) }, () => next(alphabet));
      expect(lastOccurrence(tokens, pattern), `${tokens} / ${pattern}`).toBe(naive(tokens, pattern));
    }
    expect(lastOccurrence([1, 1, 1, 1], [1, 1])).toBe(2);
    expect(lastOccurrence([1, 2], [1, 2, 3])).toBe(-1);
    expect(lastOccurrence([1, 2], [])).toBe(-1);
  });

  it('finds (or rules out) a 1,000-token near-match in 200,000 repeats, where a naive scan does 2·10^8 comparisons', () => {
    const tokens = new Int32Array(200_000).fill(5);
    expect(lastOccurrence(tokens, [...Array<number>(999).fill(5), 6])).toBe(-1);
    tokens[150_000] = 6;
    expect(lastOccurrence(tokens, [...Array<number>(999).fill(5), 6])).toBe(149_001);
  });

  it('a plain adapter starts at 0; an activated one at its last invocation, or never', () => {
    expect(adapterStart([1, 2, 3], undefined)).toBe(0);
    expect(adapterStart([9, 4, 5, 7, 4, 5, 8], [4, 5])).toBe(4);
    expect(adapterStart([9, 8], [4, 5])).toBe(Number.POSITIVE_INFINITY);
  });
});
