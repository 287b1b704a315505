import type { GenerateRequest } from '../engine/engine.js';
import { seeded } from '../rng.js';

/**
 * A seeded queue of greedy requests: prompt lengths 4–16, adapters cycling through all of them and
 * "none", a fixed output length (EOS ignored, so every run generates the same number of tokens).
 */
export function demoRequests(n: number, adapterIds: readonly string[], vocabSize: number, maxTokens: number): GenerateRequest[] {
  const next = seeded(99);
  const cycle = [...adapterIds, null];
  return Array.from({ length: n }, (_, i) => {
    const length = 4 + Math.floor(next() * 13);
    return {
      id: `req-${i}`,
      adapter: cycle[i % cycle.length] ?? null,
      prompt: Array.from({ length }, () => Math.floor(next() * vocabSize)),
      sampling: { temperature: 0, maxTokens, ignoreEos: true },
    };
  });
}
