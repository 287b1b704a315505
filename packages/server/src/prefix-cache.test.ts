import { loadPeftAdapter } from '@lora/core';
import { adapterFiles } from '@lora/llama';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatModel, post, startTestServer, type TestServer } from './test-support.js';

// Two servers on the same generated model (the cpu backend): one with --enable-prefix-caching, one without.
const checkpoint = chatModel();
const INVOCATION = [11, 12];
const adapters = () => [
  loadPeftAdapter({
    id: 'plain',
    ...adapterFiles(checkpoint.config, { id: 'plain', rank: 8, alpha: 16, targets: ['q_proj', 'v_proj', 'down_proj'] }, 31),
  }),
  loadPeftAdapter({
    id: 'alora',
    ...adapterFiles(
      checkpoint.config,
      { id: 'alora', rank: 8, alpha: 16, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'], invocationTokens: INVOCATION },
      32,
    ),
  }),
];
let cached: TestServer;
let plain: TestServer;
beforeAll(async () => {
  const options = { modelFiles: checkpoint.files, tokenizer: checkpoint.tokenizer, adapters: [], extraAdapters: adapters() };
  cached = await startTestServer({ ...options, enablePrefixCaching: true, blockSize: 8 });
  plain = await startTestServer({ ...options, extraAdapters: adapters() });
}, 60_000);
afterAll(async () => {
  await cached?.close();
  await plain?.close();
});

const system = Array.from({ length: 40 }, (_, i) => 20 + ((i * 13) % 200));

describe('--enable-prefix-caching', () => {
  it('reuses cached prompt blocks (usage.prompt_tokens_details.cached_tokens) and answers the same tokens as a server without it', async () => {
    const complete = async (s: TestServer, model: string, prompt: number[]) => {
      const r = await post(`${s.url}/v1/completions`, {
        model,
        prompt,
        max_tokens: 6,
        temperature: 0,
        ignore_eos: true,
        return_token_ids: true,
      });
      expect(r.status).toBe(200);
      return { tokens: r.json.choices[0].token_ids as number[], usage: r.json.usage };
    };
    const steps: [string, number[], number | undefined][] = [
      ['base', system, undefined], // nothing cached yet: no prompt_tokens_details (vLLM leaves it out at 0)
      ['base', system, 32], // 39 tokens may be reused: four blocks of 8
      ['alora', [...system, 1, 2, ...INVOCATION, 3, 4], 40], // the base model's blocks before the invocation (at 42)
      ['plain', system, undefined], // a plain LoRA changes every position
      ['plain', [...system, 5], 40],
    ];
    const model = (name: string) => (name === 'base' ? cached.serving.app.models.baseModel : name);
    for (const [name, prompt, hit] of steps) {
      const got = await complete(cached, model(name), prompt);
      const want = await complete(plain, name === 'base' ? plain.serving.app.models.baseModel : name, prompt);
      expect(got.tokens).toEqual(want.tokens);
      expect([name, prompt.length, got.usage.prompt_tokens_details?.cached_tokens]).toEqual([name, prompt.length, hit]);
      expect(want.usage.prompt_tokens_details).toBeUndefined();
    }
    const metrics = await (await fetch(`${cached.url}/metrics`)).text();
    const queried = steps.reduce((n, [, p]) => n + p.length, 0);
    expect(metrics).toContain(`lora_prefix_cache_queries_total ${queried}`);
    expect(metrics).toContain(`lora_prefix_cache_hits_total ${32 + 40 + 40}`);
  });
});
