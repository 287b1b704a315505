import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onlySample, type PromSample, parsePrometheusText } from './prom-text-parser.js';
import { idle, startTestServer, type TestServer, until } from './test-support.js';

// Two sequences run at once and two adapters fit the device: a third request waits.
let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({ preset: 'tiny', maxNumSeqs: 2, maxLoras: 2, maxQueue: 8 });
}, 60_000);
afterAll(async () => {
  await s?.close();
});

/** GET /metrics read by the strict text-format parser (what the endpoint picker's expfmt accepts). */
async function scrape() {
  const res = await fetch(`${s.url}/metrics`);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const families = parsePrometheusText(await res.text());
  const gauge = (name: string): PromSample => {
    expect(families.get(name)?.type).toBe('gauge');
    return onlySample(families, name);
  };
  const lora = gauge('vllm:lora_requests_info');
  const list = (label: string) => (lora.labels[label] as string).split(',').filter(Boolean);
  return {
    waiting: gauge('vllm:num_requests_waiting'),
    running: gauge('vllm:num_requests_running'),
    kv: gauge('vllm:kv_cache_usage_perc').value,
    gpuKv: gauge('vllm:gpu_cache_usage_perc').value,
    lora,
    runningAdapters: list('running_lora_adapters'),
    waitingAdapters: list('waiting_lora_adapters'),
    cacheInfo: gauge('vllm:cache_config_info'),
  };
}

/** A streaming completion that runs until `hangUp` (`maxTokens` tokens, ignore_eos). */
async function open(model: string, prompt: readonly number[], maxTokens = 1000) {
  const controller = new AbortController();
  const res = await fetch(`${s.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, prompt, max_tokens: maxTokens, ignore_eos: true, temperature: 0, stream: true }),
    signal: controller.signal,
  });
  expect(res.status).toBe(200);
  const body = res.body as ReadableStream<Uint8Array>;
  // Drain in the background so the server never waits on a full socket.
  void body.pipeTo(new WritableStream()).catch(() => {});
  return { hangUp: () => controller.abort() };
}

const prompt = (n: number) => Array.from({ length: n }, (_, i) => (7 * i + 3) % 500);

describe("the Gateway API Inference Extension's model-server protocol on /metrics", () => {
  it('an idle server: one series per gauge with model_name and engine, no adapters, KV empty, the cache size and max_lora', async () => {
    await until(() => idle(s.serving), 'an idle engine');
    const m = await scrape();
    for (const g of [m.waiting, m.running]) {
      expect(g.labels).toEqual({ model_name: s.serving.app.models.baseModel, engine: '0' });
      expect(g.value).toBe(0);
    }
    expect(m.kv).toBe(0);
    expect(m.gpuKv).toBe(0);
    expect(m.lora.labels).toEqual({ max_lora: '2', running_lora_adapters: '', waiting_lora_adapters: '' });
    // The value is the Unix time (seconds) of the update: the picker keeps the newest series.
    expect(Math.abs(m.lora.value - Date.now() / 1000)).toBeLessThan(60);
    expect(m.cacheInfo.labels).toEqual({ block_size: '1', num_gpu_blocks: String(s.serving.engine.maxKvTokens), engine: '0' });
  });

  it('past --max-num-seqs the waiting gauge rises and falls; running adapters and a waiting third one are listed apart', async () => {
    const a = await open('sql-r8', prompt(8));
    const b = await open('poet-r16', prompt(8));
    await until(() => s.serving.engine.stats().running === 2, 'two running requests');
    const c = await open('chat-r16-bf16', prompt(8));
    await until(() => s.serving.engine.stats().waiting === 1, 'a waiting request');
    const busy = await scrape();
    expect(busy.running.value).toBe(2);
    expect(busy.waiting.value).toBe(1);
    expect([...busy.runningAdapters].sort()).toEqual(['poet-r16', 'sql-r8']);
    expect(busy.waitingAdapters).toEqual(['chat-r16-bf16']);
    expect(busy.kv).toBeGreaterThan(0);
    expect(busy.gpuKv).toBe(busy.kv);
    const before = await scrape();
    a.hangUp();
    // The waiting request takes the freed sequence slot (and a's device slot).
    await until(() => s.serving.engine.stats().waiting === 0 && s.serving.engine.stats().running === 2, 'the waiting request to run');
    const moved = await scrape();
    expect(moved.waiting.value).toBe(0);
    expect([...moved.runningAdapters].sort()).toEqual(['chat-r16-bf16', 'poet-r16']);
    expect(moved.waitingAdapters).toEqual([]);
    expect(moved.lora.value).toBeGreaterThanOrEqual(before.lora.value);
    b.hangUp();
    c.hangUp();
    await until(() => idle(s.serving), 'an idle engine');
    const after = await scrape();
    expect([after.waiting.value, after.running.value, after.kv]).toEqual([0, 0, 0]);
    expect(after.lora.labels).toMatchObject({ running_lora_adapters: '', waiting_lora_adapters: '' });
  });

  it('an adapter with requests both running and waiting is listed as running only (the two lists stay disjoint)', async () => {
    const a = await open('sql-r8', prompt(8));
    const b = await open('sql-r8', prompt(8));
    await until(() => s.serving.engine.stats().running === 2, 'two running requests');
    const c = await open('sql-r8', prompt(8));
    await until(() => s.serving.engine.stats().waiting === 1, 'a waiting request');
    const m = await scrape();
    expect(m.runningAdapters).toEqual(['sql-r8']);
    expect(m.waitingAdapters).toEqual([]);
    for (const r of [a, b, c]) r.hangUp();
    await until(() => idle(s.serving), 'an idle engine');
  });

  it('KV-cache usage rises with a long prompt and returns to 0 when idle', async () => {
    const maxKv = s.serving.engine.maxKvTokens;
    // While a request runs its KV holds its prompt and what it generated so far (≤ 400 tokens):
    // at most 404 tokens for the short prompt, at least 600 for the long one.
    const usageWhileRunning = async (promptTokens: number) => {
      const r = await open('sql-r8', prompt(promptTokens), 400);
      await until(() => s.serving.engine.stats().running === 1, 'a running request');
      const { kv } = await scrape();
      r.hangUp();
      await until(() => idle(s.serving), 'an idle engine');
      return kv;
    };
    const short = await usageWhileRunning(4);
    const long = await usageWhileRunning(600);
    expect(short).toBeGreaterThan(0);
    expect(short).toBeLessThanOrEqual(404 / maxKv);
    expect(long).toBeGreaterThanOrEqual(600 / maxKv);
    expect(long).toBeGreaterThan(short);
    expect((await scrape()).kv).toBe(0);
  });
});

describe('the strict text-format parser (so that the tests above can fail)', () => {
  it('reads labels with escapes, values and timestamps', () => {
    const f = parsePrometheusText('# HELP a x\n# TYPE a gauge\na{l="q\\"\\\\\\n",m=""} 1.5e+09 1700000000\n');
    expect(onlySample(f, 'a')).toEqual({ name: 'a', labels: { l: 'q"\\\n', m: '' }, value: 1.5e9 });
  });

  it.each([
    ['a family split by another', '# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na 2\n'],
    ['a second TYPE line', '# TYPE a gauge\n# TYPE a gauge\na 1\n'],
    ['a bad value', 'a one\n'],
    ['an unterminated label', 'a{l="x} 1\n'],
    ['a label twice', 'a{l="x",l="y"} 1\n'],
  ])('refuses %s', (_, text) => {
    expect(() => parsePrometheusText(text)).toThrow();
  });
});
