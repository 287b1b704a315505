import { seeded } from '@lora/llama';

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
