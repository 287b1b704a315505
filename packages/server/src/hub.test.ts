import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adapterFiles } from '@lora/llama';
import { type HubServer, startHubServer, testTokenizerFiles } from '@lora/llama/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatModel, startTestServer, type TestServer } from './test-support.js';

// --model and --adapters given as Hub ids, downloaded from a local stand-in for the Hub (127.0.0.1).
const cache = mkdtempSync(join(tmpdir(), 'lora-server-hub-'));
let hub: HubServer;
let s: TestServer;
beforeAll(async () => {
  const m = chatModel();
  const adapter = adapterFiles(m.config, { id: 'sql', rank: 4, alpha: 8, targets: ['q_proj', 'v_proj'] }, 3);
  hub = await startHubServer({
    repos: {
      'test-org/chat-model': { ...m.files, ...testTokenizerFiles() },
      'test-org/sql-lora': { 'adapter_config.json': adapter.config, 'adapter_model.safetensors': adapter.safetensors },
    },
  });
  // Read by hubSource when the server loads (this test file runs in its own process).
  process.env.HF_ENDPOINT = hub.url;
  process.env.HF_HUB_CACHE = cache;
  s = await startTestServer({ model: 'test-org/chat-model', adapters: [{ name: 'sql', path: 'test-org/sql-lora' }] });
}, 60_000);
afterAll(async () => {
  await s?.close();
  await hub?.close();
  rmSync(cache, { recursive: true, force: true });
});

describe('a model and an adapter from the Hub', () => {
  it('serves them by Hub id, with the tokenizer from the model repository (chat works)', async () => {
    const models = (await s.client.models.list()).data as unknown as { id: string; root: string; parent: string | null }[];
    expect(models.map((c) => [c.id, c.root, c.parent])).toEqual([
      ['test-org/chat-model', 'test-org/chat-model', null],
      ['sql', 'test-org/sql-lora', 'test-org/chat-model'],
    ]);
    const res = await s.client.chat.completions.create({
      model: 'sql',
      messages: [{ role: 'user', content: 'Hello there' }],
      max_tokens: 4,
      ...({ ignore_eos: true } as object),
    });
    expect(res.usage?.completion_tokens).toBe(4);
    expect(
      hub.requests
        .filter((r) => r.origin === 'hub' && r.path.startsWith('/test-org/sql-lora/resolve/'))
        .map((r) => r.path.split('/').at(-1)),
    ).toEqual(expect.arrayContaining(['adapter_config.json', 'adapter_model.safetensors']));
  });
});

describe('--adapters from a URL and from the Hub, evicted from the host cache and loaded again', () => {
  it('reloads from the local store (no second download), with the same tokens', async () => {
    const adapterDownloads = () =>
      hub.requests.filter((r) => r.path.includes('/test-org/sql-lora/') && r.path.endsWith('.safetensors')).length;
    const t = await startTestServer({
      model: 'test-org/chat-model',
      adapters: [
        { name: 'by-url', path: `${hub.url}/test-org/sql-lora/resolve/main` },
        { name: 'by-hub', path: 'test-org/sql-lora' },
      ],
      maxLoras: 1,
      maxCpuLoras: 1,
    });
    try {
      const downloads = adapterDownloads();
      const complete = async (model: string) =>
        (
          await t.client.completions.create({
            model,
            prompt: 'Hello there',
            max_tokens: 4,
            temperature: 0,
            ...({ return_token_ids: true } as object),
          })
        ).choices[0] as unknown as { token_ids: number[] };
      const first = await complete('by-url');
      for (let i = 0; i < 3; i++) {
        await complete('by-hub');
        expect((await complete('by-url')).token_ids).toEqual(first.token_ids);
      }
      // One host-cache place for two adapters: every request after the first loaded its adapter again.
      expect(t.serving.app.models.counters.loads).toBeGreaterThanOrEqual(8);
      expect(adapterDownloads()).toBe(downloads);
    } finally {
      await t.close();
    }
  });
});
