import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idle, seededAdapters, startTestServer, type TestServer } from './test-support.js';

// 8 adapters, 4 device slots: the concurrent run swaps adapters in and out while batches mix them.
let s: TestServer;
const ADAPTERS = 8;
beforeAll(async () => {
  s = await startTestServer({ preset: 'tiny', maxLoras: 4, maxCpuLoras: 12, maxNumSeqs: 16, maxQueue: 64 });
  for (const a of seededAdapters(s.serving.model.config, ADAPTERS)) await s.serving.app.models.add(a.id, { load: () => a });
}, 60_000);
afterAll(async () => {
  await s?.close();
});

interface Case {
  model: string;
  prompt: number[];
  maxTokens: number;
  stream: boolean;
}

const cases: Case[] = Array.from({ length: 64 }, (_, i) => ({
  model: `lora-${i % ADAPTERS}`,
  prompt: Array.from({ length: 3 + ((i * 7) % 37) }, (_, j) => (i * 31 + j * 17) % 500),
  maxTokens: 4 + (i % 9),
  stream: i % 2 === 1,
}));

/** The request alone in the engine, in-process (no HTTP, nothing else in the batch). */
async function alone(c: Case): Promise<number[]> {
  const lease = await s.serving.app.models.acquire(c.model);
  try {
    const handle = s.serving.engine.add({
      prompt: c.prompt,
      adapter: lease.adapter,
      sampling: { temperature: 0, maxTokens: c.maxTokens, ignoreEos: true },
    });
    return [...(await handle.result).tokenIds];
  } finally {
    lease.release();
  }
}

/** The request through HTTP with the official client; token ids come back through vLLM's return_token_ids. */
async function overHttp(c: Case): Promise<number[]> {
  const body = {
    model: c.model,
    prompt: c.prompt,
    max_tokens: c.maxTokens,
    temperature: 0,
    ...({ ignore_eos: true, return_token_ids: true } as object),
  };
  if (!c.stream) {
    const res = await s.client.completions.create(body);
    return (res.choices[0] as unknown as { token_ids: number[] }).token_ids;
  }
  const tokens: number[] = [];
  for await (const chunk of await s.client.completions.create({ ...body, stream: true })) {
    tokens.push(...((chunk.choices[0] as unknown as { token_ids?: number[] } | undefined)?.token_ids ?? []));
  }
  return tokens;
}

describe('determinism: 64 concurrent clients over 8 adapters at temperature 0', () => {
  it('every client receives exactly the tokens of its request run alone in the engine', async () => {
    const expected: number[][] = [];
    for (const c of cases) expected.push(await alone(c));
    const swaps = async () => Number(/lora_adapter_swaps_total (\d+)/.exec(await (await fetch(`${s.url}/metrics`)).text())?.[1]);
    const swapsBefore = await swaps();
    const steps = s.serving.engine.stats().steps;
    const got = await Promise.all(cases.map(overHttp));
    const tokens = got.reduce((n, t) => n + t.length, 0);
    for (let i = 0; i < cases.length; i++) expect(got[i], `request ${i} (${cases[i]?.model})`).toEqual(expected[i]);
    // It was a batch: far fewer engine steps than tokens, with adapter swaps (8 adapters, 4 slots).
    expect(s.serving.engine.stats().steps - steps).toBeLessThan(tokens / 4);
    expect((await swaps()) - swapsBefore).toBeGreaterThanOrEqual(ADAPTERS);
    expect(idle(s.serving)).toBe(true);
  }, 60_000);
});
