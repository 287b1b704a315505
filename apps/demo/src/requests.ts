import { seeded } from '@lora/llama';
import type { Request } from './serve.js';

/** A seeded queue: prompt lengths 4–16, adapters cycling through all of them and "none". */
export function makeRequests(n: number, adapterIds: readonly string[], vocab: number, maxNewTokens: number): Request[] {
  const next = seeded(99);
  const cycle = [...adapterIds, null];
  return Array.from({ length: n }, (_, id) => {
    const len = 4 + Math.floor(next() * 13);
    return {
      id,
      adapter: cycle[id % cycle.length] ?? null,
      prompt: Int32Array.from({ length: len }, () => Math.floor(next() * vocab)),
      maxNewTokens,
    };
  });
}
