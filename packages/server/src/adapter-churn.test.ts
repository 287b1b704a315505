import { adapterBytes } from '@lora/core';
import { seeded } from '@lora/llama';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { closedLoop } from './bench/requests.js';
import { type Lease, memoryAdapter } from './models.js';
import { createServing } from './node/load.js';
import { chatModel, seededAdapters } from './test-support.js';

/** Requests of the churn run: 400 by default; `LORA_CHURN_REQUESTS=10000` for issue #22's thorough check. */
const REQUESTS = Number(process.env.LORA_CHURN_REQUESTS ?? 400);

describe('adapter churn: many adapters through two slots and a small host cache', () => {
  it(
    `${REQUESTS} requests on 12 adapters: no tensor growth, the host cache within its byte and count budgets`,
    async () => {
      const { files, tokenizer, config } = chatModel();
      const adapters = seededAdapters(config, 12, 'churn');
      const budget = 3 * Math.max(...adapters.map(adapterBytes));
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
        for (const a of adapters) await models.add(a.id, memoryAdapter(a));
        let refusals = 0;
        const random = seeded(12345);
        const drive = async (count: number) => {
          await closedLoop(count, 4, async () => {
            const name = adapters[Math.floor(random() * adapters.length)]?.id as string;
            // Every registered adapter held by a running request: 429, and a client tries again.
            let lease: Lease | undefined;
            while (lease === undefined) {
              lease = await models.acquire(name).catch(async (err: unknown) => {
                if ((err as { status?: number }).status !== 429) throw err;
                refusals++;
                await new Promise((resolve) => setTimeout(resolve, 1));
                return undefined;
              });
            }
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
        await drive(REQUESTS);
        expect(tf.memory().numTensors).toBe(tensors);
        const { loads, evictions } = models.counters;
        expect(evictions).toBeGreaterThan(REQUESTS / 4); // the cache really churned
        expect(loads).toBe(serving.runtime.adapters.registered.length + evictions);
        expect(refusals).toBeLessThan(REQUESTS); // a full cache is the exception, not the rule
      } finally {
        await serving.dispose();
      }
    },
    Math.max(60_000, REQUESTS * 50),
  );
});
