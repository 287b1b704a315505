import { applyChatTemplate } from '@lora/llama';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatModel, idle, post, seededAdapters, startTestServer, type TestServer } from './test-support.js';

// A tiny generated Llama whose vocabulary is the test tokenizer's (byte-level BPE, ChatML template), served with it.
const m = chatModel();
let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({
    modelFiles: m.files,
    tokenizer: m.tokenizer,
    servedModelName: 'chat-base',
    maxLoraRank: 8,
    extraAdapters: seededAdapters(m.config, 2, 'chat-lora'),
  });
}, 60_000);
afterAll(async () => {
  await s?.close();
});

const messages = [
  { role: 'system' as const, content: 'You are a helpful AI assistant.' },
  { role: 'user' as const, content: 'What is the capital of France?' },
];

describe('chat completions through the tokenizer chat template', () => {
  it('answers with an assistant message; the prompt is the template with the generation prompt', async () => {
    const res = await s.client.chat.completions.create({
      model: 'chat-lora-0',
      messages,
      max_tokens: 12,
      temperature: 0,
      ...({ ignore_eos: true, return_token_ids: true } as object),
    });
    expect(res.object).toBe('chat.completion');
    const choice = res.choices[0] as (typeof res.choices)[0] & { token_ids: number[] };
    expect(choice.message.role).toBe('assistant');
    expect(choice.finish_reason).toBe('length');
    expect(choice.token_ids).toHaveLength(12);
    expect(choice.message.content).toBe(m.tokenizer.decode(choice.token_ids, { skipSpecialTokens: true }));
    const text = applyChatTemplate(m.tokenizer, messages, { addGenerationPrompt: true });
    const ids = m.tokenizer.encode(text, { addSpecialTokens: false });
    expect((res as unknown as { prompt_token_ids: number[] }).prompt_token_ids).toEqual(ids);
    expect(res.usage).toEqual({ prompt_tokens: ids.length, completion_tokens: 12, total_tokens: ids.length + 12 });
  });

  it('max_completion_tokens wins over max_tokens; without either the request may use the rest of the context', async () => {
    const a = await s.client.chat.completions.create({
      model: 'chat-base',
      messages,
      max_tokens: 3,
      max_completion_tokens: 5,
      ...({ ignore_eos: true } as object),
    });
    expect(a.usage?.completion_tokens).toBe(5);
  });

  it('streams chunks: the role first, content deltas that add up to the text, a usage chunk, [DONE]', async () => {
    const full = await s.client.chat.completions.create({
      model: 'chat-lora-1',
      messages,
      max_tokens: 10,
      temperature: 0,
      ...({ ignore_eos: true } as object),
    });
    const stream = await s.client.chat.completions.create({
      model: 'chat-lora-1',
      messages,
      max_tokens: 10,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
      ...({ ignore_eos: true } as object),
    });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks[0]?.object).toBe('chat.completion.chunk');
    expect(chunks[0]?.choices[0]?.delta.role).toBe('assistant');
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    expect(text).toBe(full.choices[0]?.message.content);
    expect(chunks.filter((c) => c.choices.length > 0).at(-1)?.choices[0]?.finish_reason).toBe('length');
    expect(chunks.at(-1)?.usage).toEqual(full.usage);
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
  });

  it('text completions are tokenized with special tokens; stop strings end the text (vLLM include_stop_str_in_output)', async () => {
    const prompt = 'The quick brown fox';
    const base = await s.client.completions.create({
      model: 'chat-base',
      prompt,
      max_tokens: 12,
      temperature: 0,
      ...({ ignore_eos: true } as object),
    });
    const text = base.choices[0]?.text ?? '';
    expect(text.length).toBeGreaterThan(2);
    const stop = text.slice(2, 4);
    const stopped = await s.client.completions.create({
      model: 'chat-base',
      prompt,
      max_tokens: 12,
      temperature: 0,
      stop,
      ...({ ignore_eos: true } as object),
    });
    expect(stopped.choices[0]?.finish_reason).toBe('stop');
    expect(stopped.choices[0]?.text).toBe(text.slice(0, text.indexOf(stop)));
    expect((stopped.choices[0] as unknown as { stop_reason: string }).stop_reason).toBe(stop);
    const kept = await s.client.completions.create({
      model: 'chat-base',
      prompt,
      max_tokens: 12,
      temperature: 0,
      stop: [stop],
      ...({ ignore_eos: true, include_stop_str_in_output: true } as object),
    });
    expect(kept.choices[0]?.text).toBe(text.slice(0, text.indexOf(stop) + stop.length));
  });

  it('content parts of type text are joined; bad messages, images and tools are 400 naming the field', async () => {
    const parts = await post(`${s.url}/v1/chat/completions`, {
      model: 'chat-base',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Hello' },
            { type: 'text', text: 'world' },
          ],
        },
      ],
      max_tokens: 2,
    });
    expect(parts.status).toBe(200);
    const bad = async (body: object, param: string) => {
      const r = await post(`${s.url}/v1/chat/completions`, { model: 'chat-base', messages, max_tokens: 2, ...body });
      expect(r.status).toBe(400);
      expect(r.json.error.param).toBe(param);
    };
    await bad({ messages: [] }, 'messages');
    await bad({ messages: 'hi' }, 'messages');
    await bad({ messages: [{ content: 'no role' }] }, 'messages');
    await bad({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'http://x' } }] }] }, 'messages');
    await bad({ tools: [{ type: 'function', function: { name: 'f' } }] }, 'tools');
    await bad({ chat_template: '{{ 1 }}' }, 'chat_template');
    await bad({ max_completion_tokens: -1 }, 'max_completion_tokens');
    await bad({ add_generation_prompt: true, continue_final_message: true }, 'continue_final_message');
    const err = await s.client.chat.completions.create({ model: 'missing', messages }).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
  });

  it('the engine is idle afterwards', () => {
    expect(idle(s.serving)).toBe(true);
  });
});
