import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { adapterBytes, loadPeftAdapter, writePeftAdapterDir } from '@lora/core';
import { adapterFiles, seeded } from '@lora/llama';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { acquireRetrying, closedLoop } from './bench/requests.js';
import { createServing } from './node/load.js';
import { loraRootResolver } from './node/lora-root.js';
import { chatModel } from './test-support.js';

/** Requests of the churn run: 400 by default; `LORA_CHURN_REQUESTS=10000` for issue #22's thorough check. */
const REQUESTS = Number(process.env.LORA_CHURN_REQUESTS ?? 400);
/** Heap growth allowed over the run, after a full GC at both ends: at 10,000 requests a leak of 400 bytes per request fails. */
const MAX_HEAP_GROWTH = 4 * 2 ** 20;

/** V8's full collection, reachable without starting the test process with --expose-gc. */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

describe('adapter churn: many adapters through two slots and a small host cache', () => {
  it(
    `${REQUESTS} requests on 12 adapters: read from disk again after each eviction: no tensor or heap growth, the host cache within its byte and count budgets`,
    async () => {
      const { files, tokenizer, config } = chatModel();
      const dir = await mkdtemp(join(tmpdir(), 'lora-churn-'));
      const names = Array.from({ length: 12 }, (_, i) => `churn-${i}`);
      let largest = 0;
      for (const [i, name] of names.entries()) {
        const adapter = adapterFiles(
          config,
          { id: name, rank: 2 + (i % 3) * 2, alpha: 8, targets: ['q_proj', 'v_proj', 'down_proj'] },
          500 + i,
        );
        await writePeftAdapterDir(join(dir, name), adapter);
        largest = Math.max(largest, adapterBytes(loadPeftAdapter({ id: name, ...adapter })));
      }
      const budget = 3 * largest;
      const serving = await createServing({
        modelFiles: files,
        tokenizer,
        maxLoras: 2,
        maxCpuLoras: 4,
        maxCpuLoraBytes: budget,
        maxNumSeqs: 4,
      });
      try {
        const { models } = serving.app;
        // From disk through the adapter-load thread, as /v1/load_lora_adapter reads them: every eviction is a real reload.
        const resolve = await loraRootResolver(dir, { loader: serving.loader });
        for (const name of names) await models.add(name, await resolve(name));
        let refusals = 0;
        const random = seeded(12345);
        const drive = async (count: number) => {
          await closedLoop(count, 4, async () => {
            const name = names[Math.floor(random() * names.length)] as string;
            // Every registered adapter held by a running request: 429, and a client tries again.
            const { lease, refusals: refused } = await acquireRetrying(models, name);
            refusals += refused;
            try {
              const handle = serving.engine.add({ prompt: [1, 2, 3], adapter: lease.adapter, sampling: { maxTokens: 1 } });
              const result = await handle.result;
              expect(result.finishReason).toBe('length');
            } finally {
              lease.release();
            }
            const { hostMemory, registered } = serving.runtime.adapters;
            expect(hostMemory).toBeLessThanOrEqual(budget);
            expect(registered.length).toBeLessThanOrEqual(4);
          });
          await serving.engine.drain();
        };
        await drive(40); // every slot stack made, every program shape seen
        const tensors = tf.memory().numTensors;
        collectGarbage();
        const heap = process.memoryUsage().heapUsed;
        await drive(REQUESTS);
        expect(tf.memory().numTensors).toBe(tensors);
        collectGarbage();
        const growth = process.memoryUsage().heapUsed - heap;
        expect(growth).toBeLessThan(MAX_HEAP_GROWTH);
        const { loads, evictions } = models.counters;
        expect(evictions).toBeGreaterThan(REQUESTS / 4); // the cache really churned
        expect(loads).toBe(serving.runtime.adapters.registered.length + evictions);
        expect(refusals).toBeLessThan(REQUESTS); // a full cache is the exception, not the rule
      } finally {
        await serving.dispose();
        await rm(dir, { recursive: true, force: true });
      }
    },
    Math.max(60_000, REQUESTS * 50),
  );
});
