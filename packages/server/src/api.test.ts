import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idle, post, startTestServer, type TestServer } from './test-support.js';

// The embedded tiny demo model (no tokenizer: token-id prompts) and its four demo adapters.
let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({ preset: 'tiny' });
}, 60_000);
afterAll(async () => {
  await s?.close();
});

const prompt = [5, 9, 17, 3, 44, 100, 7];

describe('OpenAI API: models and completions (token-id prompts)', () => {
  it('GET /v1/models lists the base model and each adapter with parent = base model (vLLM ModelCard)', async () => {
    const list = await s.client.models.list();
    const ids = list.data.map((m) => m.id);
    expect(ids).toEqual(['demo-tiny', 'sql-r8', 'poet-r16', 'translator-r32-rslora', 'chat-r16-bf16']);
    const cards = list.data as unknown as { id: string; parent: string | null; max_model_len: number | null }[];
    expect(cards[0]).toMatchObject({ parent: null, max_model_len: 1024 });
    for (const c of cards.slice(1)) expect(c.parent).toBe('demo-tiny');
    expect((await s.client.models.retrieve('poet-r16')).id).toBe('poet-r16');
  });

  it('completes a token-id prompt with an adapter: max_tokens, usage, and token_ids with return_token_ids', async () => {
    const res = await s.client.completions.create({
      model: 'sql-r8',
      prompt,
      max_tokens: 6,
      temperature: 0,
      // vLLM extras, as extra_body in Python.
      ...({ ignore_eos: true, return_token_ids: true } as object),
    });
    const choice = res.choices[0] as unknown as { token_ids: number[]; prompt_token_ids: number[]; finish_reason: string };
    expect(res.object).toBe('text_completion');
    expect(res.model).toBe('sql-r8');
    expect(choice.finish_reason).toBe('length');
    expect(choice.token_ids).toHaveLength(6);
    expect(choice.prompt_token_ids).toEqual(prompt);
    expect(res.usage).toEqual({ prompt_tokens: 7, completion_tokens: 6, total_tokens: 13 });
  });

  it('defaults max_tokens to 16 like OpenAI', async () => {
    const res = await s.client.completions.create({ model: 'demo-tiny', prompt, ...({ ignore_eos: true } as object) });
    expect(res.usage?.completion_tokens).toBe(16);
  });

  it('the adapter changes the output, and the same request at temperature 0 gives the same tokens', async () => {
    const run = async (model: string) => {
      const r = await post(`${s.url}/v1/completions`, {
        model,
        prompt,
        max_tokens: 8,
        temperature: 0,
        ignore_eos: true,
        return_token_ids: true,
      });
      return r.json.choices[0].token_ids as number[];
    };
    const base = await run('demo-tiny');
    expect(await run('demo-tiny')).toEqual(base);
    const withAdapter = await run('translator-r32-rslora');
    expect(withAdapter).not.toEqual(base);
  });

  it('lora_scale (extra_body): 0 gives the base model, 1 the adapter, other strengths their own tokens — concurrently', async () => {
    const run = async (model: string, loraScale?: number) => {
      const res = await s.client.completions.create({
        model,
        prompt,
        max_tokens: 8,
        temperature: 0,
        ...({ ignore_eos: true, return_token_ids: true, ...(loraScale === undefined ? {} : { lora_scale: loraScale }) } as object),
      });
      return (res.choices[0] as unknown as { token_ids: number[] }).token_ids;
    };
    const [base, full, off, one, half] = await Promise.all([
      run('demo-tiny'),
      run('translator-r32-rslora'),
      run('translator-r32-rslora', 0),
      run('translator-r32-rslora', 1),
      run('translator-r32-rslora', 0.5),
    ]);
    expect(off).toEqual(base);
    expect(one).toEqual(full);
    expect(half).not.toEqual(full);
    expect(await run('translator-r32-rslora', 0.5)).toEqual(half);
  });

  it('lora_mix (extra_body): a weighted mix of served adapters over the base model, in the shared batch, beside plain requests', async () => {
    const run = async (model: string, loraMix?: { name: string; weight: number }[]) => {
      const res = await s.client.completions.create({
        model,
        prompt,
        max_tokens: 8,
        temperature: 0,
        ...({ ignore_eos: true, return_token_ids: true, ...(loraMix === undefined ? {} : { lora_mix: loraMix }) } as object),
      });
      expect(res.model).toBe(model);
      return (res.choices[0] as unknown as { token_ids: number[] }).token_ids;
    };
    const mix = [
      { name: 'sql-r8', weight: 0.8 },
      { name: 'translator-r32-rslora', weight: 1.5 },
    ];
    const [mixed, sql, base, alone] = await Promise.all([
      run('demo-tiny', mix),
      run('sql-r8'),
      run('demo-tiny'),
      run('demo-tiny', [{ name: 'sql-r8', weight: 1 }]),
    ]);
    // A one-adapter mix at weight 1 is the adapter; the two-adapter mix is neither of its parts.
    expect(alone).toEqual(sql);
    expect(mixed).not.toEqual(sql);
    expect(mixed).not.toEqual(base);
    expect(await run('demo-tiny', mix)).toEqual(mixed);
    const mixError = async (body: object, status: number) => {
      const r = await post(`${s.url}/v1/completions`, { model: 'demo-tiny', prompt, max_tokens: 2, ...body });
      expect(r.status, JSON.stringify(body)).toBe(status);
      expect(r.json.error).toMatchObject({ param: 'lora_mix' });
    };
    await mixError({ lora_mix: [] }, 400);
    await mixError({ lora_mix: [{ name: 'sql-r8' }] }, 400);
    await mixError(
      {
        lora_mix: [
          { name: 'sql-r8', weight: 1 },
          { name: 'sql-r8', weight: 2 },
        ],
      },
      400,
    );
    await mixError({ lora_mix: [{ name: 'nope', weight: 1 }] }, 404);
    await mixError({ lora_mix: [{ name: 'demo-tiny', weight: 1 }] }, 400);
    await mixError({ model: 'sql-r8', lora_mix: [{ name: 'poet-r16', weight: 1 }] }, 400);
  });

  it('a seed makes a sampled request reproducible', async () => {
    const run = async () =>
      (
        await post(`${s.url}/v1/completions`, {
          model: 'poet-r16',
          prompt,
          max_tokens: 8,
          temperature: 1,
          seed: 42,
          return_token_ids: true,
          ignore_eos: true,
        })
      ).json.choices[0].token_ids;
    expect(await run()).toEqual(await run());
  });

  it('streams OpenAI SSE chunks ending in [DONE], with a final usage chunk for include_usage', async () => {
    const stream = await s.client.completions.create({
      model: 'poet-r16',
      prompt,
      max_tokens: 5,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
      ...({ ignore_eos: true, return_token_ids: true } as object),
    });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    const withChoices = chunks.filter((c) => c.choices.length > 0);
    const tokens = withChoices.flatMap((c) => (c.choices[0] as unknown as { token_ids: number[] }).token_ids);
    expect(tokens).toHaveLength(5);
    expect(withChoices.at(-1)?.choices[0]?.finish_reason).toBe('length');
    expect(withChoices.slice(0, -1).every((c) => c.choices[0]?.finish_reason === null)).toBe(true);
    const last = chunks.at(-1);
    expect(last?.choices).toEqual([]);
    expect(last?.usage).toEqual({ prompt_tokens: 7, completion_tokens: 5, total_tokens: 12 });
    // The raw stream ends with data: [DONE].
    const raw = await fetch(`${s.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'sql-r8', prompt, max_tokens: 2, stream: true }),
    });
    expect(raw.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect((await raw.text()).trimEnd().endsWith('data: [DONE]')).toBe(true);
  });

  it('stop_token_ids end the generation and stop_reason names the token (vLLM)', async () => {
    const first = await post(`${s.url}/v1/completions`, {
      model: 'demo-tiny',
      prompt,
      max_tokens: 8,
      temperature: 0,
      ignore_eos: true,
      return_token_ids: true,
    });
    const ids = first.json.choices[0].token_ids as number[];
    const stopAt = ids[2] as number;
    const r = await post(`${s.url}/v1/completions`, {
      model: 'demo-tiny',
      prompt,
      max_tokens: 8,
      temperature: 0,
      ignore_eos: true,
      return_token_ids: true,
      stop_token_ids: [stopAt],
    });
    const choice = r.json.choices[0];
    expect(choice.finish_reason).toBe('stop');
    expect(choice.stop_reason).toBe(stopAt);
    expect(choice.token_ids).toEqual(ids.slice(0, ids.indexOf(stopAt) + 1));
  });
});

describe('OpenAI API: errors are OpenAI-shaped with the right status and parameter', () => {
  const bad = async (body: object, status: number, param: string | null) => {
    const r = await post(`${s.url}/v1/completions`, { model: 'sql-r8', prompt, max_tokens: 2, ...body });
    expect(r.status).toBe(status);
    expect(r.json.error).toMatchObject({ param });
    expect(typeof r.json.error.message).toBe('string');
    expect(typeof r.json.error.type).toBe('string');
    return r.json.error as { message: string; code: string | null };
  };

  it('unknown model: 404 NotFoundError through the openai client', async () => {
    const err = await s.client.completions.create({ model: 'nope', prompt, max_tokens: 2 }).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect(err.status).toBe(404);
    expect(err.error).toMatchObject({ code: 'model_not_found', param: 'model' });
  });

  it('bad sampling parameters: 400 naming the parameter', async () => {
    expect((await bad({ temperature: -1 }, 400, 'temperature')).message).toMatch(/temperature/);
    await bad({ temperature: 'hot' }, 400, 'temperature');
    await bad({ top_p: 0 }, 400, 'top_p');
    await bad({ top_p: 1.5 }, 400, 'top_p');
    await bad({ top_k: -2 }, 400, 'top_k');
    await bad({ max_tokens: 0 }, 400, 'max_tokens');
    await bad({ max_tokens: 2.5 }, 400, 'max_tokens');
    await bad({ seed: 'x' }, 400, 'seed');
    await bad({ n: 2 }, 400, 'n');
    await bad({ stop: 5 }, 400, 'stop');
    await bad({ stop_token_ids: [1e9] }, 400, 'stop_token_ids');
    await bad({ ignore_eos: 'yes' }, 400, 'ignore_eos');
    await bad({ presence_penalty: 0.5 }, 400, 'presence_penalty');
    await bad({ logprobs: 2 }, 400, 'logprobs');
    await bad({ stream_options: { include_usage: true } }, 400, 'stream_options');
    await bad({ model: 42 }, 400, 'model');
    await bad({ lora_scale: 'strong' }, 400, 'lora_scale');
    await bad({ lora_scale: 1e39 }, 400, 'lora_scale');
  });

  it('bad prompts: missing, empty, text without a tokenizer, token ids out of the vocabulary, several prompts', async () => {
    await bad({ prompt: undefined }, 400, 'prompt');
    await bad({ prompt: [] }, 400, 'prompt');
    expect((await bad({ prompt: 'hello' }, 400, 'prompt')).message).toMatch(/no tokenizer/);
    expect((await bad({ prompt: [1, 2, 99999] }, 400, 'prompt')).message).toMatch(/prompt\[2\]/);
    await bad({ prompt: [1, -1] }, 400, 'prompt');
    await bad({ prompt: [[1, 2], [3]] }, 400, 'prompt');
  });

  it('a request past the context length: 400 context_length_exceeded', async () => {
    const e = await bad({ max_tokens: 1020 }, 400, 'max_tokens');
    expect(e.code).toBe('context_length_exceeded');
    const e2 = await bad({ prompt: Array.from({ length: 1025 }, () => 1) }, 400, 'prompt');
    expect(e2.code).toBe('context_length_exceeded');
  });

  it('chat without a tokenizer: a clear 400 (token-id completions still work)', async () => {
    const err = await s.client.chat.completions.create({ model: 'sql-r8', messages: [{ role: 'user', content: 'hi' }] }).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.error).toMatchObject({ param: 'messages' });
    expect(err.error.message).toMatch(/no tokenizer/);
  });

  it('invalid JSON: 400; a body that is not an object: 400; a body over 1 MiB: 413', async () => {
    const r = await post(`${s.url}/v1/completions`, '{"model": ');
    expect(r.status).toBe(400);
    expect(r.json.error.code).toBe('invalid_json');
    expect((await post(`${s.url}/v1/completions`, '[1,2]')).status).toBe(400);
    const big = await post(`${s.url}/v1/completions`, { model: 'sql-r8', prompt: 'x'.repeat(1024 * 1024 + 10) });
    expect(big.status).toBe(413);
    expect(big.json.error.code).toBe('request_too_large');
    // Without Content-Length (a streamed body) the limit holds too.
    const body = new ReadableStream({
      start(c) {
        for (let i = 0; i < 40; i++) c.enqueue(new Uint8Array(32 * 1024).fill(32));
        c.close();
      },
    });
    const res = await fetch(`${s.url}/v1/completions`, { method: 'POST', body, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(413);
  });

  it('runtime LoRA endpoints are 404 unless --allow-runtime-lora, like vLLM; unknown routes are 404', async () => {
    expect((await post(`${s.url}/v1/load_lora_adapter`, { lora_name: 'x', lora_path: '/tmp' })).status).toBe(404);
    expect((await post(`${s.url}/v1/unload_lora_adapter`, { lora_name: 'sql-r8' })).status).toBe(404);
    const r = await post(`${s.url}/v1/embeddings`, {});
    expect(r.status).toBe(404);
    expect(r.json.error.type).toBe('invalid_request_error');
  });

  it('after all of this the engine is idle and /health is 200', async () => {
    expect(idle(s.serving)).toBe(true);
    expect((await fetch(`${s.url}/health`)).status).toBe(200);
  });

  it('GET /metrics: Prometheus text with requests by status and model, tokens, TTFT and ITL histograms, adapters', async () => {
    const text = await (await fetch(`${s.url}/metrics`)).text();
    expect(text).toMatch(/lora_http_requests_total\{endpoint="\/v1\/completions",status="200",model="sql-r8"\} \d+/);
    expect(text).toMatch(/lora_http_requests_total\{endpoint="\/v1\/completions",status="404",model=""\} 1/);
    expect(text).toMatch(/lora_http_requests_total\{endpoint="\/v1\/completions",status="400",model="sql-r8"\} \d+/);
    expect(text).toMatch(/lora_generation_tokens_total\{model="sql-r8"\} \d+/);
    expect(text).toMatch(/lora_prompt_tokens_total\{model="poet-r16"\} \d+/);
    expect(text).toMatch(/lora_time_to_first_token_seconds_count \d+/);
    expect(text).toMatch(/lora_inter_token_latency_seconds_bucket\{le="0.1"\} \d+/);
    expect(text).toMatch(/lora_num_requests_waiting 0/);
    expect(text).toMatch(/lora_num_requests_running 0/);
    expect(text).toMatch(/lora_adapters_served 4/);
    expect(text).toMatch(/lora_adapters_active [1-4]/);
    expect(text).toMatch(/lora_adapter_swaps_total [1-9]/);
  });
});
