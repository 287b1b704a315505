import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adapterBytes, loadPeftAdapter, writePeftAdapterDir } from '@lora/core';
import { adapterFiles, type ModelConfig } from '@lora/llama';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from './app.js';
import { memoryAdapter } from './models.js';
import { loraRootResolver } from './node/lora-root.js';
import { chatModel, idle, post, seededAdapters, startTestServer, type TestServer, until } from './test-support.js';

// A --lora-root with good and bad adapters, and an adapter outside it reachable through `..`, absolute paths and symlinks.
const tmp = mkdtempSync(join(tmpdir(), 'lora-server-'));
const root = join(tmp, 'root');
const outside = join(tmp, 'outside');
let s: TestServer;
let config: ModelConfig;

beforeAll(async () => {
  mkdirSync(root);
  s = await startTestServer({ preset: 'tiny', allowRuntimeLora: true, loraRoot: root, maxLoraRank: 32 });
  config = s.serving.model.config;
  const spec = (id: string, rank: number) => ({ id, rank, alpha: 2 * rank, targets: ['q_proj', 'v_proj', 'down_proj'] });
  await writePeftAdapterDir(join(root, 'fresh'), adapterFiles(config, spec('fresh', 8), 71));
  await writePeftAdapterDir(join(root, 'nested', 'sql-v2'), adapterFiles(config, spec('sql-v2', 4), 72));
  await writePeftAdapterDir(join(root, 'too-big-rank'), adapterFiles(config, spec('big', 64), 73));
  await writePeftAdapterDir(join(root, 'dora'), adapterFiles(config, { ...spec('dora', 8), dora: true }, 76));
  await writePeftAdapterDir(join(root, 'alora'), adapterFiles(config, { ...spec('alora', 8), invocationTokens: [11, 12] }, 77));
  await writePeftAdapterDir(outside, adapterFiles(config, spec('outside', 8), 74));
  mkdirSync(join(root, 'broken'));
  writeFileSync(join(root, 'broken', 'adapter_config.json'), '{ not json');
  writeFileSync(join(root, 'broken', 'adapter_model.safetensors'), 'x');
  mkdirSync(join(root, 'empty'));
  // Symlink escapes: the directory itself, and one file inside an otherwise innocent directory.
  symlinkSync(outside, join(root, 'link-to-outside'));
  mkdirSync(join(root, 'sneaky'));
  writeFileSync(join(root, 'sneaky', 'adapter_config.json'), adapterFiles(config, spec('sneaky', 8), 75).config);
  symlinkSync(join(outside, 'adapter_model.safetensors'), join(root, 'sneaky', 'adapter_model.safetensors'));
}, 60_000);

afterAll(async () => {
  await s?.close();
  rmSync(tmp, { recursive: true, force: true });
});

const load = (lora_name: string, lora_path: string) => post(`${s.url}/v1/load_lora_adapter`, { lora_name, lora_path });
const unload = (lora_name: string) => post(`${s.url}/v1/unload_lora_adapter`, { lora_name });
const prompt = [12, 7, 99, 3, 3, 41];
const listed = async () => (await s.client.models.list()).data.map((m) => m.id);

describe('runtime LoRA loading (vLLM /v1/load_lora_adapter, /v1/unload_lora_adapter)', () => {
  it('loads an adapter under --lora-root, serves it, and lists it with its path as root', async () => {
    const r = await load('fresh', 'fresh');
    expect(r.status).toBe(200);
    expect(r.text).toBe("Success: LoRA adapter 'fresh' added successfully.");
    expect(await listed()).toContain('fresh');
    const res = await s.client.completions.create({ model: 'fresh', prompt, max_tokens: 3 });
    expect(res.usage?.completion_tokens).toBeGreaterThan(0);
    expect((await load('nested', join(root, 'nested', 'sql-v2'))).status).toBe(200);
  });

  it('loads and serves a DoRA adapter (use_dora, lora_magnitude_vector) like any other', async () => {
    expect((await load('dora', 'dora')).status).toBe(200);
    const body = { prompt, max_tokens: 6, temperature: 0, ignore_eos: true, return_token_ids: true };
    const res = await post(`${s.url}/v1/completions`, { ...body, model: 'dora' });
    expect(res.status).toBe(200);
    expect(res.json.choices[0].token_ids).toHaveLength(6);
    const id = s.serving.runtime.adapters.registered.find((r) => r.startsWith('dora'));
    const modules = [...(s.serving.runtime.adapters.get(id as string)?.modules.values() ?? [])];
    expect(modules.length).toBeGreaterThan(0);
    for (const m of modules) expect(m.magnitude?.length).toBe(m.outFeatures);
  });

  it('serves an activated LoRA (alora_invocation_tokens): the base model until the last invocation in the prompt', async () => {
    expect((await load('alora', 'alora')).status).toBe(200);
    const run = async (model: string, p: number[]) =>
      (await post(`${s.url}/v1/completions`, { model, prompt: p, max_tokens: 6, temperature: 0, ignore_eos: true, return_token_ids: true }))
        .json.choices[0].token_ids as number[];
    const base = s.serving.app.models.baseModel;
    // Without the invocation tokens: exactly the base model's tokens.
    expect(await run('alora', prompt)).toEqual(await run(base, prompt));
    const invoked = [...prompt, 11, 12, 5];
    expect(await run('alora', invoked)).not.toEqual(await run(base, invoked));
  });

  it('refuses every path that leaves --lora-root with 403: .., absolute, a symlinked directory, a symlinked file', async () => {
    for (const path of ['../outside', outside, '/etc', 'link-to-outside', 'sneaky', 'nested/../../outside']) {
      const r = await load(`escape-${path.length}`, path);
      expect(r.status, path).toBe(403);
      expect(r.json.error).toMatchObject({ param: 'lora_path', code: 'lora_path_forbidden' });
    }
    expect(await listed()).not.toContain('escape-10');
  });

  it('missing, empty, malformed and too-large-rank adapters: 404 / 404 / 400 / 400, and nothing is served', async () => {
    expect((await load('a', 'does-not-exist')).status).toBe(404);
    expect((await load('b', 'empty')).status).toBe(404);
    const broken = await load('c', 'broken');
    expect(broken.status).toBe(400);
    const rank = await load('d', 'too-big-rank');
    expect(rank.status).toBe(400);
    expect(rank.json.error.message).toMatch(/maxLoraRank/);
    expect(await listed()).toEqual(expect.not.arrayContaining(['a', 'b', 'c', 'd']));
  });

  it('bad requests: missing fields 400, a name already served 400, unloading an unknown name 404 (vLLM)', async () => {
    expect((await post(`${s.url}/v1/load_lora_adapter`, { lora_name: 'x' })).status).toBe(400);
    expect((await post(`${s.url}/v1/load_lora_adapter`, { lora_path: 'fresh' })).status).toBe(400);
    const dup = await load('fresh', 'fresh');
    expect(dup.status).toBe(400);
    expect(dup.json.error.message).toBe("The lora adapter 'fresh' has already been loaded.");
    expect((await load('demo-tiny', 'fresh')).status).toBe(400);
    const missing = await unload('never-loaded');
    expect(missing.status).toBe(404);
    expect(missing.json.error.message).toBe("The lora adapter 'never-loaded' cannot be found.");
  });

  it('without --lora-root the load endpoint refuses every path with 403 (the app alone, as a fetch handler)', async () => {
    const app = createApp({ engine: s.serving.engine, allowRuntimeLora: true, baseModel: 'demo-tiny' });
    const res = await app.fetch(
      new Request('http://local/v1/load_lora_adapter', { method: 'POST', body: JSON.stringify({ lora_name: 'x', lora_path: 'fresh' }) }),
    );
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('lora_root_required');
  });

  it('load and unload while other requests stream: the streams finish with their own adapters, new requests see the change', async () => {
    const run = async (model: string) =>
      (await post(`${s.url}/v1/completions`, { model, prompt, max_tokens: 40, temperature: 0, ignore_eos: true, return_token_ids: true }))
        .json.choices[0].token_ids as number[];
    const expected = { 'sql-r8': await run('sql-r8'), 'poet-r16': await run('poet-r16'), fresh: await run('fresh') };
    const streams = Object.keys(expected).map(async (model) => {
      const res = await fetch(`${s.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model, prompt, max_tokens: 40, temperature: 0, ignore_eos: true, return_token_ids: true, stream: true }),
      });
      const text = await res.text();
      const chunks = text
        .split('\n\n')
        .filter((l) => l.startsWith('data: {'))
        .map((l) => JSON.parse(l.slice(6)));
      return {
        model,
        tokens: chunks.flatMap((c) => c.choices[0]?.token_ids ?? []),
        finish: chunks.at(-1).choices[0].finish_reason,
        done: text.trimEnd().endsWith('[DONE]'),
      };
    });
    await until(() => s.serving.engine.stats().running === 3, 'three streams to run');
    // While they run: unload two of their adapters, load a new one under one of the freed names, and use it.
    expect((await unload('sql-r8')).status).toBe(200);
    expect((await unload('fresh')).status).toBe(200);
    expect((await post(`${s.url}/v1/completions`, { model: 'sql-r8', prompt, max_tokens: 2 })).status).toBe(404);
    expect((await load('sql-r8', 'nested/sql-v2')).status).toBe(200);
    const replaced = await post(`${s.url}/v1/completions`, {
      model: 'sql-r8',
      prompt,
      max_tokens: 40,
      temperature: 0,
      ignore_eos: true,
      return_token_ids: true,
    });
    expect(replaced.status).toBe(200);
    expect(replaced.json.choices[0].token_ids).not.toEqual(expected['sql-r8']);
    for (const r of await Promise.all(streams)) {
      expect(r.done, r.model).toBe(true);
      expect(r.finish, r.model).toBe('length');
      expect(r.tokens, r.model).toEqual(expected[r.model as keyof typeof expected]);
    }
    await until(() => idle(s.serving), 'idle');
    // The unloaded adapters left the runtime with their last request; the new sql-r8 stays.
    const registered = s.serving.runtime.adapters.registered;
    expect(registered.filter((id) => id.startsWith('fresh#'))).toEqual([]);
    expect(registered.filter((id) => id.startsWith('sql-r8#'))).toHaveLength(1);
    expect(await listed()).toEqual(expect.arrayContaining(['sql-r8', 'poet-r16', 'nested']));
    expect(await listed()).not.toContain('fresh');
  });

  it('evicted adapters are loaded again from their source (host cache smaller than the adapters served)', async () => {
    const { maxCpuLoras } = s.serving.runtime.config;
    // Load more adapters than the host cache holds, then use every served adapter twice, all at once.
    for (let i = 0; s.serving.app.models.adapters.length <= maxCpuLoras; i++) expect((await load(`more-${i}`, 'fresh')).status).toBe(200);
    const all = s.serving.app.models.adapters;
    expect(all.length).toBeGreaterThan(maxCpuLoras);
    const results = await Promise.all([...all, ...all].map((model) => post(`${s.url}/v1/completions`, { model, prompt, max_tokens: 2 })));
    // Requests beyond the host cache may be refused with 429 while it is full of adapters in use; none fails otherwise.
    for (const r of results) expect([200, 429]).toContain(r.status);
    expect(results.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(maxCpuLoras);
    for (const model of all) expect((await post(`${s.url}/v1/completions`, { model, prompt, max_tokens: 2 })).status).toBe(200);
    expect(s.serving.runtime.adapters.registered.length).toBeLessThanOrEqual(maxCpuLoras);
  });
});

describe('loading on demand: one load per cold adapter, then a free device slot', () => {
  it("a request's adapter, read again from its source, is in a device slot before any step runs; it never takes another's slot", async () => {
    const { files, tokenizer, config } = chatModel();
    const served = seededAdapters(config, 3, 'pre');
    const t = await startTestServer({ modelFiles: files, tokenizer, extraAdapters: served, maxLoras: 1, maxCpuLoras: 2 });
    try {
      const { models, engine } = t.serving.app;
      const { adapters } = t.serving.runtime;
      // Three adapters through a 2-adapter host cache: the first one was pushed out to its source.
      expect(models.tierOf('pre-0')).toBe('source');
      for (const id of adapters.slots) if (id !== null) adapters.deactivate(id);
      const lease = await models.acquire('pre-0');
      expect([models.tierOf('pre-0'), engine.stats().running, engine.stats().waiting]).toEqual(['device', 0, 0]);
      lease.release();
      // The one slot is taken: an adapter in host memory stays there until a step needs it.
      (await models.acquire('pre-2')).release();
      expect([models.tierOf('pre-2'), models.tierOf('pre-0')]).toEqual(['host', 'device']);
    } finally {
      await t.close();
    }
  });

  it('100 requests at once for one adapter on disk load it once (through the adapter-load thread), and all of them run', async () => {
    const t = await startTestServer({ preset: 'tiny', maxLoras: 2, maxCpuLoras: 2 });
    const dir = mkdtempSync(join(tmpdir(), 'lora-once-'));
    try {
      const { models } = t.serving.app;
      const resolve = await loraRootResolver(dir, { loader: t.serving.loader });
      for (const name of ['once-0', 'once-1', 'once-2']) {
        const spec = { id: name, rank: 8, alpha: 16, targets: ['q_proj', 'v_proj'] };
        await writePeftAdapterDir(join(dir, name), adapterFiles(t.serving.model.config, spec, name.length));
        await models.add(name, await resolve(name));
      }
      expect(models.tierOf('once-0')).toBe('source');
      const loads = models.counters.loads;
      const results = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          post(`${t.url}/v1/completions`, { model: 'once-0', prompt: [1, 2, 3 + (i % 7)], max_tokens: 1 }),
        ),
      );
      expect(results.map((r) => r.status)).toEqual(results.map(() => 200));
      expect(models.counters.loads - loads).toBe(1);
    } finally {
      await t.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('--max-cpu-lora-bytes', () => {
  it('keeps the registered adapters within the byte budget, loading evicted ones again; an adapter larger than the budget is 400', async () => {
    const { files, tokenizer, config } = chatModel();
    const served = seededAdapters(config, 4, 'bytes');
    const budget = 2 * Math.max(...served.map(adapterBytes));
    const t = await startTestServer({ modelFiles: files, tokenizer, extraAdapters: served, maxCpuLoraBytes: budget });
    try {
      const { adapters } = t.serving.runtime;
      for (let round = 0; round < 2; round++) {
        for (const a of served) {
          const r = await post(`${t.url}/v1/completions`, { model: a.id, prompt: [1, 2, 3], max_tokens: 2 });
          expect(r.status).toBe(200);
          expect(adapters.hostMemory).toBeLessThanOrEqual(budget);
        }
      }
      expect(adapters.registered.length).toBeLessThan(served.length);
      const { loads, evictions } = t.serving.app.models.counters;
      expect(evictions).toBeGreaterThan(0);
      // Every adapter read is in host memory now or was evicted since.
      expect(loads).toBe(adapters.registered.length + evictions);
      const metrics = await (await fetch(`${t.url}/metrics`)).text();
      expect(metrics).toContain(`lora_adapter_loads_total ${loads}`);
      expect(metrics).toContain(`lora_adapter_evictions_total ${evictions}`);
      // Rank 64 on every module: far more than two of the served adapters.
      const targets = ['embed_tokens', 'q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj', 'lm_head'];
      const huge = loadPeftAdapter({ id: 'huge', ...adapterFiles(config, { id: 'huge', rank: 64, alpha: 64, targets }, 9) });
      expect(adapterBytes(huge)).toBeGreaterThan(budget);
      await expect(t.serving.app.models.add('huge', memoryAdapter(huge))).rejects.toMatchObject({ status: 400, code: 'adapter_too_large' });
      expect(adapters.hostMemory).toBeLessThanOrEqual(budget);
    } finally {
      await t.close();
    }
  });
});
