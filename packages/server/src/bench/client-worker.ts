import { Worker } from 'node:worker_threads';
import type { StreamTiming } from './stats.js';

/**
 * The benchmark's client loop in a worker thread, so that sending requests and parsing the
 * streams never runs on the server's event loop (vLLM's benchmark_serving.py is a separate
 * process too). Plain JavaScript evaluated by the worker (`eval: true`): it runs the same from
 * source, under vitest and from dist/ without a build step of its own. Each request streams with
 * `return_token_ids` (every token arrives in a chunk even without a tokenizer) and is timed as
 * vLLM's `benchmarks/benchmark_serving.py` times the OpenAI completions backend: time to the
 * first token, then the gap before each later one. A request that fails is recorded with its
 * error and the loop goes on (benchmark_serving.py counts failed requests the same way).
 */
const SOURCE = String.raw`
const { parentPort, workerData } = require('node:worker_threads');
async function timedStream(url, body) {
  const t0 = performance.now();
  const res = await fetch(url + '/v1/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...body, stream: true, return_token_ids: true }),
  });
  if (!res.ok || res.body === null) throw new Error('benchmark request failed: HTTP ' + res.status + ' ' + (await res.text()));
  const decoder = new TextDecoder();
  const reader = res.body.getReader();
  let buffer = '';
  let first;
  let last = 0;
  let tokens = 0;
  const itlMs = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end = buffer.indexOf('\n\n');
    while (end >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      end = buffer.indexOf('\n\n');
      if (!event.startsWith('data: {')) continue;
      const chunk = JSON.parse(event.slice(6));
      if (chunk.error) throw new Error('benchmark request failed mid-stream: ' + chunk.error.message);
      const n = (chunk.choices && chunk.choices[0] && chunk.choices[0].token_ids || []).length;
      if (n === 0) continue;
      const now = performance.now();
      if (first === undefined) first = now;
      else for (let i = 0; i < n; i++) itlMs.push((now - last) / n);
      last = now;
      tokens += n;
    }
  }
  return { ttftMs: (first === undefined ? performance.now() : first) - t0, itlMs, e2eMs: performance.now() - t0, tokens };
}
parentPort.on('message', async ({ bodies, concurrency }) => {
  try {
    const timings = new Array(bodies.length);
    let next = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: Math.min(concurrency, bodies.length) }, async () => {
      while (next < bodies.length) {
        const i = next++;
        const t0 = performance.now();
        try {
          timings[i] = await timedStream(workerData.url, bodies[i]);
        } catch (err) {
          // fetch's own message is just "fetch failed": the socket-level reason is in its cause.
          const cause = err && err.cause ? ' (' + String(err.cause.code || err.cause.message || err.cause) + ')' : '';
          timings[i] = { ttftMs: NaN, itlMs: [], e2eMs: performance.now() - t0, tokens: 0, error: String(err && err.message || err) + cause };
        }
      }
    }));
    parentPort.postMessage({ timings, ms: performance.now() - t0 });
  } catch (err) {
    parentPort.postMessage({ error: String(err && err.stack || err) });
  }
});
`;

/** A benchmark client in its own thread, kept for the whole run (its connections stay open between cells, as a real client's). */
export interface ClientLoop {
  /** Sends `bodies` with `concurrency` clients, each sending its next request when its last one ended; each request's timing and the wall time. */
  run(bodies: readonly object[], concurrency: number): Promise<{ timings: StreamTiming[]; ms: number }>;
  close(): Promise<void>;
}

export function startClientLoop(url: string): ClientLoop {
  const worker = new Worker(SOURCE, { eval: true, workerData: { url } });
  let failed: Error | undefined;
  worker.on('error', (err) => {
    failed = err;
  });
  return {
    run(bodies, concurrency) {
      if (failed) return Promise.reject(failed);
      return new Promise((resolve, reject) => {
        const onError = (err: Error) => reject(err);
        worker.once('error', onError);
        worker.once('message', (m: { timings: StreamTiming[]; ms: number } | { error: string }) => {
          worker.off('error', onError);
          if ('error' in m) reject(new Error(m.error));
          else resolve(m);
        });
        worker.postMessage({ bodies, concurrency });
      });
    },
    async close() {
      await worker.terminate();
    },
  };
}
