// Test helpers shared by the package's tests (not published: excluded in package.json "files").
import { type LoRAAdapter, loadPeftAdapter } from '@lora/core';
import { type AdapterSpec, adapterFiles, buildCheckpoint, type ModelConfig, type Tokenizer } from '@lora/llama';
import { makeTestTokenizer } from '@lora/llama/testing';
import OpenAI from 'openai';
import { memoryAdapter } from './models.js';
import { createServing, type Serving, type ServingOptions } from './node/load.js';
import { type HttpServer, listen } from './node/serve.js';

export interface TestServer {
  readonly url: string;
  readonly client: OpenAI;
  readonly serving: Serving;
  readonly http: HttpServer;
  close(): Promise<void>;
}

/**
 * The server on 127.0.0.1 with a random port (the embedded tiny model unless told otherwise),
 * an `openai` client for it that never retries, and `close()` that stops the server, aborts what
 * is left and frees the model.
 */
export async function startTestServer(options: ServingOptions & { extraAdapters?: readonly LoRAAdapter[] } = {}): Promise<TestServer> {
  const { extraAdapters = [], ...rest } = options;
  const serving = await createServing({ preset: 'tiny', maxNumSeqs: 8, ...rest });
  for (const a of extraAdapters) await serving.app.models.add(a.id, memoryAdapter(a));
  const http = await listen(serving.app, { host: '127.0.0.1', port: 0 });
  const client = new OpenAI({ baseURL: `${http.url}/v1`, apiKey: options.apiKey ?? 'no-key', maxRetries: 0, timeout: 30_000 });
  return {
    url: http.url,
    client,
    serving,
    http,
    async close() {
      await http.shutdown({ graceMs: 0 });
      await serving.dispose();
    },
  };
}

const SPECS: readonly Omit<AdapterSpec, 'id'>[] = [
  { rank: 4, alpha: 8, targets: ['q_proj', 'v_proj'] },
  { rank: 8, alpha: 16, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] },
  { rank: 2, alpha: 4, targets: ['gate_proj', 'up_proj', 'down_proj'] },
  { rank: 8, alpha: 8, targets: ['embed_tokens', 'lm_head'], rslora: true },
];

/** `n` seeded PEFT adapters for a model (ranks 2 to 8, different target modules), loaded through the PEFT path. */
export function seededAdapters(config: ModelConfig, n: number, prefix = 'lora'): LoRAAdapter[] {
  return Array.from({ length: n }, (_, i) => {
    const spec = { id: `${prefix}-${i}`, ...(SPECS[i % SPECS.length] as Omit<AdapterSpec, 'id'>) };
    return loadPeftAdapter({ id: spec.id, ...adapterFiles(config, spec, 5000 + i) });
  });
}

/** A small generated Llama whose vocabulary is the test tokenizer's (ChatML template), for chat and text prompts. */
export function chatModel(): { files: Record<string, Uint8Array>; tokenizer: Tokenizer; config: ModelConfig } {
  const tokenizer = makeTestTokenizer();
  const checkpoint = buildCheckpoint({
    architecture: 'LlamaForCausalLM',
    hiddenSize: 64,
    intermediateSize: 128,
    numHiddenLayers: 2,
    numAttentionHeads: 4,
    numKeyValueHeads: 2,
    vocabSize: tokenizer.vocabSize,
    maxPositionEmbeddings: 512,
    seed: 11,
  });
  return { files: checkpoint.files, tokenizer, config: checkpoint.config };
}

/** Polls `check` until it holds (every 10 ms, at most `ms`); throws with `what` otherwise. */
export async function until(check: () => boolean, what: string, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** POSTs JSON and returns status, headers and the parsed body (or text). */
export async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  // biome-ignore lint/suspicious/noExplicitAny: tests read response fields by path and let expect() judge them
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, json, text };
}

/** An idle engine: nothing waiting or running, no KV cache held. */
export function idle(serving: Serving): boolean {
  const s = serving.engine.stats();
  return s.waiting === 0 && s.running === 0 && s.kvTokens === 0;
}
