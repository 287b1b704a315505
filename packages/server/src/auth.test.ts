import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post, startTestServer, type TestServer } from './test-support.js';

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({ preset: 'tiny', apiKey: 'sk-test-key' });
}, 60_000);
afterAll(async () => {
  await s?.close();
});

describe('--api-key', () => {
  it('the right key passes (the openai client sends it as a Bearer token)', async () => {
    const res = await s.client.completions.create({
      model: 'sql-r8',
      prompt: [1, 2, 3],
      max_tokens: 2,
      ...({ ignore_eos: true } as object),
    });
    expect(res.usage?.completion_tokens).toBe(2);
  });

  it('a missing or wrong key is 401 on every /v1 route', async () => {
    const wrong = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'sk-test-kez', maxRetries: 0 });
    const err = await wrong.models.list().catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(err.error).toMatchObject({ code: 'invalid_api_key' });
    for (const key of ['', 'sk-test-key-and-more', 'sk-test-ke', 'SK-TEST-KEY']) {
      const r = await post(
        `${s.url}/v1/completions`,
        { model: 'sql-r8', prompt: [1], max_tokens: 1 },
        key ? { authorization: `Bearer ${key}` } : {},
      );
      expect(r.status, key).toBe(401);
    }
    expect((await post(`${s.url}/v1/completions`, {}, { authorization: 'Basic sk-test-key' })).status).toBe(401);
    expect((await fetch(`${s.url}/v1/models`)).status).toBe(401);
  });

  it('/health and /metrics stay open, like vLLM', async () => {
    expect((await fetch(`${s.url}/health`)).status).toBe(200);
    expect((await fetch(`${s.url}/metrics`)).status).toBe(200);
  });
});
