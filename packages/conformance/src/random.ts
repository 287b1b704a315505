/** Seeded PRNG (mulberry32): every failure reproduces from the seed printed in its test name. */
export class Random {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let z = this.#state;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** Float32 values uniform in [-1, 1). */
  floats(n: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = 2 * this.next() - 1;
    return out;
  }

  /** A seed for another seeded generator (e.g. @lora/llama's fixtures), drawn from this one. */
  seed(): number {
    return this.int(1, 2 ** 31 - 1);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)] as T;
  }
}

/** How a case assigns adapter slots to its tokens. */
export type SlotPattern =
  | 'random' // any slot or -1
  | 'none' // every token -1
  | 'single' // every token the same slot
  | 'single-with-none' // one slot, some tokens -1
  | 'distinct' // every token its own slot (needs maxLoras >= T)
  | 'requests'; // contiguous runs, like prefill of several requests

export function slotIndices(rng: Random, pattern: SlotPattern, numTokens: number, maxLoras: number): Int32Array {
  const out = new Int32Array(numTokens);
  const one = rng.int(0, maxLoras - 1);
  let t = 0;
  while (t < numTokens) {
    switch (pattern) {
      case 'random':
        out[t++] = rng.int(-1, maxLoras - 1);
        break;
      case 'none':
        out[t++] = -1;
        break;
      case 'single':
        out[t++] = one;
        break;
      case 'single-with-none':
        out[t] = t % 3 === 1 ? -1 : one;
        t++;
        break;
      case 'distinct':
        out[t] = t % maxLoras;
        t++;
        break;
      case 'requests': {
        const slot = rng.int(-1, maxLoras - 1);
        const run = Math.min(numTokens - t, rng.int(1, Math.max(1, Math.ceil(numTokens / 4))));
        out.fill(slot, t, t + run);
        t += run;
        break;
      }
    }
  }
  return out;
}
