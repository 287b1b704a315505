import { describe, expect, it } from 'vitest';
import { bucketSize, bucketTokens, nextPowerOfTwo, roundUp, tokenBuckets } from './bucketing.js';

describe('bucketing', () => {
  it('rounds to powers of two within bounds', () => {
    expect([0, 1, 2, 3, 5, 16, 17, 1000].map(nextPowerOfTwo)).toEqual([1, 1, 2, 4, 8, 16, 32, 1024]);
    expect(bucketSize(3, 8)).toBe(8);
    expect(bucketSize(100, 1, 96)).toBe(128);
    expect(bucketSize(90, 1, 96)).toBe(96);
    expect(roundUp(17, 8)).toBe(24);
  });

  it('maps every batch size up to maxNumTokens onto one of a few buckets', () => {
    const max = 3000;
    const buckets = tokenBuckets(max);
    expect(buckets).toEqual([16, 32, 64, 128, 256, 512, 1024, 2048, 3000]);
    for (let t = 1; t <= max; t++) {
      const b = bucketTokens(t, max);
      expect(b).toBeGreaterThanOrEqual(t);
      expect(buckets).toContain(b);
    }
    expect(tokenBuckets(8)).toEqual([8]);
  });
});
