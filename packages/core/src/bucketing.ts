/**
 * Static-shape helpers. GPU programs and simulated TPU programs are compiled per shape, so every
 * varying size (tokens, active adapters, rank) is rounded up to a small set of buckets: a serving
 * loop then compiles a bounded number of programs however its batches vary.
 */

/** Smallest power of two ≥ n (1 for n ≤ 1). */
export function nextPowerOfTwo(n: number): number {
  if (n <= 1) return 1;
  return 2 ** Math.ceil(Math.log2(n));
}

/** n rounded up to a power of two, at least `min`, at most `max` (when `max` is given and n ≤ max). */
export function bucketSize(n: number, min = 1, max = Number.POSITIVE_INFINITY): number {
  const bucket = Math.max(min, nextPowerOfTwo(n));
  return n <= max ? Math.min(bucket, max) : bucket;
}

/** Smallest token bucket: below it padding costs less than another compiled program. */
export const MIN_TOKEN_BUCKET = 16;

/** The bucket a batch of `numTokens` tokens is padded to, given the largest batch the runtime takes. */
export function bucketTokens(numTokens: number, maxNumTokens = Number.POSITIVE_INFINITY): number {
  return bucketSize(numTokens, MIN_TOKEN_BUCKET, maxNumTokens);
}

/** Every token bucket a runtime with this `maxNumTokens` can produce, ascending. */
export function tokenBuckets(maxNumTokens: number): number[] {
  const buckets: number[] = [];
  for (let b = MIN_TOKEN_BUCKET; b < maxNumTokens; b *= 2) buckets.push(b);
  buckets.push(maxNumTokens);
  return buckets;
}

/** x rounded up to a multiple of `multiple`. */
export function roundUp(x: number, multiple: number): number {
  return Math.ceil(x / multiple) * multiple;
}
