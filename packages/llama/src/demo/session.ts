import type { LoRAAdapter, LoRAConfig, LoRARuntime } from '@lora/core';
import type { ModelConfig } from '../config.js';
import { Engine, type GenerateRequest, type StepInfo } from '../engine/engine.js';
import type { GenerationResult } from '../engine/handle.js';
import type { CausalLM } from '../model.js';
import type { WeightMap } from '../weights.js';
import { type CheckResult, checkAgainstMerged } from './check.js';

/** One pass over the queue. */
export interface PassStats {
  readonly ms: number;
  readonly steps: number;
  /** Steps that prefilled prompt tokens (with or without decodes beside them), and pure decode steps. */
  readonly prefillMs: number;
  readonly decodeMs: number;
  readonly promptTokens: number;
  readonly generatedTokens: number;
  /** Adapters written into a device slot (first loads and re-activations after eviction). */
  readonly activations: number;
}

export interface SessionReport {
  readonly results: readonly GenerationResult[];
  readonly checks: readonly CheckResult[];
  readonly lora: PassStats;
  readonly base: PassStats;
  /** Requests with an adapter whose tokens differ from the base model's: the adapters matter. */
  readonly changedByLoRA: number;
  readonly withAdapter: number;
}

export type SessionPhase = 'with LoRA' | 'without LoRA' | 'checking vs merged W';

/** Serves `requests` through an Engine and measures the pass. */
async function pass(
  model: CausalLM,
  runtime: LoRARuntime,
  requests: readonly GenerateRequest[],
  maxNumSeqs: number,
  onFinished?: () => void,
  withoutLoRA = false,
): Promise<{ results: GenerationResult[]; stats: PassStats }> {
  let steps = 0;
  let prefillMs = 0;
  let decodeMs = 0;
  let activations = 0;
  let slots = runtime.adapters.slots;
  const onStep = (s: StepInfo) => {
    steps++;
    if (s.prefillTokens > 0) prefillMs += s.ms;
    else decodeMs += s.ms;
    const now = runtime.adapters.slots;
    activations += now.filter((id, i) => id !== null && id !== slots[i]).length;
    slots = now;
    for (let i = 0; i < s.finished; i++) onFinished?.();
  };
  const engine = new Engine({ model, maxNumSeqs, onStep, withoutLoRA });
  const t0 = performance.now();
  const results = await Promise.all(requests.map((r) => engine.add(r).result));
  const ms = performance.now() - t0;
  const promptTokens = results.reduce((n, r) => n + r.promptIds.length, 0);
  const generatedTokens = results.reduce((n, r) => n + r.tokenIds.length, 0);
  return { results, stats: { ms, steps, prefillMs, decodeMs, promptTokens, generatedTokens, activations } };
}

/**
 * What the demo does, in Node or in a browser: serve the queue with LoRA (continuous batching,
 * fewer slots than adapters), the same queue without LoRA, then check each request against its
 * adapter merged into W.
 */
export async function runDemoSession(args: {
  runtime: LoRARuntime;
  /** The config reference runs are created with (backend and its options). */
  lora: LoRAConfig;
  model: CausalLM;
  config: ModelConfig;
  weights: WeightMap;
  adapters: readonly LoRAAdapter[];
  requests: readonly GenerateRequest[];
  maxNumSeqs?: number;
  onProgress?: (phase: SessionPhase, done: number, total: number) => void;
}): Promise<SessionReport> {
  const { runtime, model, requests } = args;
  const maxNumSeqs = args.maxNumSeqs ?? 8;
  const total = requests.length;
  // Warm-up (JIT, heap growth, XNNPACK weight packing at these shapes), so neither measured pass pays for it.
  await pass(
    model,
    runtime,
    requests.map((r) => ({ ...r, sampling: { ...r.sampling, maxTokens: 2 } })),
    maxNumSeqs,
  );
  let done = 0;
  const lora = await pass(model, runtime, requests, maxNumSeqs, () => args.onProgress?.('with LoRA', ++done, total));
  done = 0;
  // The baseline: the same schedule (the same batches, waiting for the same slots), no adapter applied.
  const base = await pass(model, runtime, requests, maxNumSeqs, () => args.onProgress?.('without LoRA', ++done, total), true);
  done = 0;
  const checks = await checkAgainstMerged({
    lora: args.lora,
    config: args.config,
    weights: args.weights,
    adapters: new Map(args.adapters.map((a) => [a.id, a])),
    results: lora.results,
    onRequest: () => args.onProgress?.('checking vs merged W', ++done, total),
  });
  return {
    results: lora.results,
    checks,
    lora: lora.stats,
    base: base.stats,
    changedByLoRA: lora.results.filter((r, i) => r.adapter !== null && r.tokenIds.join() !== base.results[i]?.tokenIds.join()).length,
    withAdapter: requests.filter((r) => (r.adapter ?? null) !== null).length,
  };
}
