import './backends.js';
import { createLoRA } from '@lora/core';
import { decodeLoRAShare, type GenerateRequest, type LoRAStepShare, queueDecodeStep } from '@lora/llama';
import { type DemoPreset, demoRequests, loadDemoModel } from '@lora/llama/demo';
import { registerBenchAdapters } from './model-adapters.js';
import type { Progress } from './progress.js';
import { type ServeStats, servePass, tokensPerSecond } from './serve-pass.js';

export { decodeTokensPerSecond, tokensPerSecond } from './serve-pass.js';

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
  /** The runtime's `maxLoraRank`: the largest of the adapters' ranks. */
  rank: number;
  /** The adapters' ranks when they are mixed (adapter i has `ranks[i % ranks.length]`). */
  ranks?: readonly number[];
  lora: ServeStats;
  base: ServeStats;
  /** Extra time per generated or prefilled token with LoRA, relative to the same schedule without (fastest pass of each kind). */
  overhead: number;
  /** The same, round by round (each round runs both passes back to back): the lowest and highest. */
  overheadRange: { low: number; high: number; rounds: number };
  /** What LoRA must cost in the queue's first decode step (every request at the median prompt length, on its adapter). */
  mustCost: LoRAStepShare;
}

/**
 * The demo model serving a queue in which every adapter is used (16 requests, 8 distinct adapters,
 * rank 16 on every linear module) through the Engine, with LoRA and with the same schedule on the
 * base model alone. The model is the preset's in-memory checkpoint, loaded as a downloaded one is.
 */
export async function benchModel(
  preset: DemoPreset,
  opts: {
    requests: number;
    adapters: number;
    /** Rank of every adapter unless `ranks` mixes them. */
    rank: number;
    /** Mixed ranks: adapter i has `ranks[i % ranks.length]`, padded to the largest. */
    ranks?: readonly number[];
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
    maxLoraRank: Math.max(opts.rank, ...(opts.ranks ?? [])),
    maxCpuLoras: opts.adapters,
  });
  try {
    const { model, config } = await loadDemoModel(preset, rt);
    try {
      const ids = registerBenchAdapters(rt, config, opts.adapters, opts.ranks ?? [opts.rank]);
      // Every request has an adapter: the worst case for LoRA overhead. As many adapters as slots
      // and sequences as requests, so the Engine admits the whole queue in its first step, with
      // LoRA and without: both passes run the same schedule.
      const requests = demoRequests(opts.requests, ids, config.vocabSize, opts.maxNewTokens).map((r, i) => ({
        ...r,
        adapter: ids[i % ids.length] as string,
      }));
      const withoutLoRA = requests.map((r) => ({ ...r, adapter: null }));
      const pass = (queue: readonly GenerateRequest[]) => servePass(model, rt, queue, opts.requests);
      // Warm-up on the whole queue: first prefill shapes grow the heap and pack XNNPACK weights, and
      // whichever pass ran first would pay for it.
      await pass(requests.map((r) => ({ ...r, sampling: { ...r.sampling, maxTokens: 2 } })));
      // Interleaved rounds; the faster of each kind counts (noise only ever adds time).
      const runs = { lora: [] as ServeStats[], base: [] as ServeStats[] };
      for (let round = 0; round < opts.rounds; round++) {
        runs.lora.push(await pass(requests));
        opts.progress?.step(`model on ${backend.label}: with LoRA ${round + 1}/${opts.rounds}`);
        runs.base.push(await pass(withoutLoRA));
        opts.progress?.step(`model on ${backend.label}: without LoRA ${round + 1}/${opts.rounds}`);
      }
      const fastest = (xs: ServeStats[]) => xs.reduce((a, b) => (b.prefillMs + b.decodeMs < a.prefillMs + a.decodeMs ? b : a));
      const lora = fastest(runs.lora);
      const base = fastest(runs.base);
      const perRound = runs.lora.map((l, i) => tokensPerSecond(runs.base[i] as ServeStats) / tokensPerSecond(l) - 1);
      const mustCost = decodeLoRAShare(
        config,
        queueDecodeStep(requests, (id) => rt.adapters.get(id)),
      );
      return {
        backend: backend.label,
        preset: preset.name,
        requests: opts.requests,
        adapters: opts.adapters,
        rank: Math.max(opts.rank, ...(opts.ranks ?? [])),
        ...(opts.ranks === undefined ? {} : { ranks: opts.ranks }),
        lora,
        base,
        overhead: tokensPerSecond(base) / tokensPerSecond(lora) - 1,
        overheadRange: { low: Math.min(...perRound), high: Math.max(...perRound), rounds: perRound.length },
        mustCost,
      };
    } finally {
      model.dispose();
    }
  } finally {
    rt.dispose();
  }
}
