import './backends.js';
import { createLoRA } from '@lora/core';
import { LlamaModel, type ModelConfig, makeRequests, type ServeStats, seededWeights, serve } from '@lora/demo/serving';
import { registerBenchAdapters } from './model-adapters.js';
import type { Progress } from './progress.js';

/** A LoRA backend by name, with its options: how `createLoRA` is asked for it. */
export interface ModelBackend {
  /** Shown in the report, e.g. 'cpu (engine wasm)'. */
  label: string;
  backend: string;
  backendOptions?: Record<string, unknown>;
}

export interface ModelBenchResult {
  backend: string;
  preset: string;
  requests: number;
  adapters: number;
  rank: number;
  lora: ServeStats;
  base: ServeStats;
  /** Extra time per generated or prefilled token with LoRA, relative to the same schedule without. */
  overhead: number;
}

export const tokensPerSecond = (s: ServeStats): number => (s.prefillTokens + s.decodeTokens) / ((s.prefillMs + s.decodeMs) / 1000);
export const decodeTokensPerSecond = (s: ServeStats): number => s.decodeTokens / (s.decodeMs / 1000);

/**
 * The demo model serving a queue in which every adapter is used (16 requests, 8 distinct adapters,
 * rank 16 on every linear module), with LoRA and with the same schedule on the base model alone.
 */
export async function benchModel(
  config: ModelConfig,
  opts: {
    requests: number;
    adapters: number;
    rank: number;
    maxNewTokens: number;
    rounds: number;
    backend?: ModelBackend;
    progress?: Progress;
  },
): Promise<ModelBenchResult> {
  const backend = opts.backend ?? { label: 'cpu', backend: 'cpu' };
  const rt = await createLoRA({
    backend: backend.backend,
    backendOptions: backend.backendOptions,
    maxLoras: opts.adapters,
    maxLoraRank: opts.rank,
    maxCpuLoras: opts.adapters,
  });
  const model = new LlamaModel(rt, config, seededWeights(config));
  try {
    const ids = registerBenchAdapters(rt, config, opts.adapters, opts.rank);
    // Every request has an adapter: the worst case for LoRA overhead.
    const requests = makeRequests(opts.requests, ids, config.vocab, opts.maxNewTokens).map((r, i) => ({
      ...r,
      adapter: ids[i % ids.length] as string,
    }));
    // Warm-up on the whole queue: first prefill shapes grow the heap and pack XNNPACK weights, and
    // whichever pass ran first would pay for it.
    await serve(
      model,
      rt,
      requests.map((r) => ({ ...r, maxNewTokens: 2 })),
      { maxRunning: opts.requests },
    );
    // Interleaved rounds; the faster of each kind counts (noise only ever adds time).
    const runs = { lora: [] as ServeStats[], base: [] as ServeStats[] };
    for (let round = 0; round < opts.rounds; round++) {
      runs.lora.push((await serve(model, rt, requests, { maxRunning: opts.requests })).stats);
      opts.progress?.step(`model on ${backend.label}: with LoRA ${round + 1}/${opts.rounds}`);
      runs.base.push((await serve(model, rt, requests, { maxRunning: opts.requests, withoutLoRA: true })).stats);
      opts.progress?.step(`model on ${backend.label}: without LoRA ${round + 1}/${opts.rounds}`);
    }
    const fastest = (xs: ServeStats[]) => xs.reduce((a, b) => (b.prefillMs + b.decodeMs < a.prefillMs + a.decodeMs ? b : a));
    const lora = fastest(runs.lora);
    const base = fastest(runs.base);
    return {
      backend: backend.label,
      preset: config.name,
      requests: opts.requests,
      adapters: opts.adapters,
      rank: opts.rank,
      lora,
      base,
      overhead: tokensPerSecond(base) / tokensPerSecond(lora) - 1,
    };
  } finally {
    model.dispose();
    rt.dispose();
  }
}
