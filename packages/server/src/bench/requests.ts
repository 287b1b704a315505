import { seeded } from '@lora/llama';
import type { Lease, ServedModels } from '../models.js';

/** A request's prompt: seeded token ids, different for every request (nothing is shared between requests). */
export function promptOf(length: number, index: number, vocab: number): number[] {
  const next = seeded(1_000_003 * length + index);
  return Array.from({ length }, () => Math.floor(next() * vocab));
}

/** Runs `total` jobs with `concurrency` workers, each taking the next job as soon as its last one ended (vLLM's --max-concurrency); the HTTP clients do the same in client-worker.ts. */
export async function closedLoop<T>(
  total: number,
  concurrency: number,
  job: (i: number) => Promise<T>,
): Promise<{ results: T[]; ms: number }> {
  const results: T[] = new Array(total);
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, total) }, async () => {
      while (next < total) {
        const i = next++;
        results[i] = await job(i);
      }
    }),
  );
  return { results, ms: performance.now() - t0 };
}

/**
 * A lease on `name` as a client gets one: a full host cache (every adapter in it held by a request
 * or the last step) answers 429 with Retry-After, and the client tries again a millisecond later.
 * The lease, and how many times it was refused first.
 */
export async function acquireRetrying(models: ServedModels, name: string): Promise<{ lease: Lease; refusals: number }> {
  for (let refusals = 0; ; refusals++) {
    const lease = await models.acquire(name).catch((err: unknown) => {
      if ((err as { status?: number }).status !== 429) throw err;
      return undefined;
    });
    if (lease !== undefined) return { lease, refusals };
    await new Promise((r) => setTimeout(r, 1));
  }
}
