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
const http = require('node:http');
// node:http, not fetch: fetch (undici) gives up on a response whose next bytes take more than 300 s
// (its bodyTimeout), and a 2048-token prompt at concurrency 64 waits longer than that for its first
// token on a CPU. benchmark_serving.py gives each request 6 hours (aiohttp's ClientTimeout); this
// client waits as long as the server streams. Connections are kept alive between requests.
const agent = new http.Agent({ keepAlive: true });
function post(url, payload, retried = false) {
  return new Promise((resolve, reject) => {
    let responded = false;
    const req = http.request(url, {
      method: 'POST',
      agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
    }, (res) => {
      responded = true;
      resolve(res);
    });
    req.on('error', (err) => {
      if (responded) return; // the response's own stream reports it
      // A kept-alive socket the server closed as idle (its keepAliveTimeout) just as this request
      // took it: the request never reached the server, so it is sent again once, on a new socket
      // (the retry Node's http docs give for request.reusedSocket).
      if (!retried && req.reusedSocket && err.code === 'ECONNRESET') post(url, payload, true).then(resolve, reject);
      else reject(err);
    });
    req.end(payload);
  });
}
async function timedStream(url, body) {
  const t0 = performance.now();
  const res = await post(url + '/v1/completions', JSON.stringify({ ...body, stream: true, return_token_ids: true }));
  res.setEncoding('utf8');
  if (res.statusCode !== 200) {
    let text = '';
    for await (const piece of res) text += piece;
    throw new Error('benchmark request failed: HTTP ' + res.statusCode + ' ' + text);
  }
  let buffer = '';
  let first;
  let last = 0;
  let tokens = 0;
  let done = false;
  const itlMs = [];
  for await (const piece of res) {
    buffer += piece;
    let end = buffer.indexOf('\n\n');
    while (end >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      end = buffer.indexOf('\n\n');
      if (event === 'data: [DONE]') done = true;
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
  // A stream that ends without its [DONE] was cut off: a failed request, not a short one.
  if (!done) throw new Error('benchmark request failed: the stream ended before data: [DONE]');
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
          // A socket error's message can be as bare as "socket hang up": its code says more.
          const cause = err && err.code ? ' (' + String(err.code) + ')' : '';
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
