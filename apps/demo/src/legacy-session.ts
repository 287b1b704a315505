import type { LoRAAdapter, LoRAConfig, LoRARuntime } from '@lora/core';
import type { CausalLM, ModelConfig, WeightMap } from '@lora/llama';
import { type CheckResult, checkAgainstMerged } from './check.js';
import { type Request, type ServeOptions, type ServeStats, serve } from './serve.js';

export interface SessionReport {
  checks: CheckResult[];
  lora: ServeStats;
  base: ServeStats;
  /** Requests with an adapter whose tokens differ from the base model's: the adapters matter. */
  changedByLoRA: number;
  withAdapter: number;
}

export type SessionPhase = 'with LoRA' | 'without LoRA' | 'checking vs merged W';

/**
 * What the demo does, in Node or in a browser: serve the queue with LoRA (continuous batching),
 * the same schedule without LoRA, then check each request against its adapter merged into W.
 */
export async function runSession(args: {
  rt: LoRARuntime;
  /** The config reference runs are created with (backend and its options). */
  config: LoRAConfig;
  model: CausalLM;
  modelConfig: ModelConfig;
  /** The model's weights by tensor name: the merged-weight check builds its reference models from them. */
  weights: WeightMap;
  adapters: readonly LoRAAdapter[];
  requests: readonly Request[];
  oneBatch?: boolean;
  onProgress?: (phase: SessionPhase, done: number, total: number, detail: string) => void;
}): Promise<SessionReport> {
  const { rt, model, requests } = args;
  const maxRunning = 8;
  // Warm-up on the whole queue (JIT, heap growth, XNNPACK weight packing at the prefill shapes),
  // so that neither measured pass pays for it.
  await serve(
    model,
    rt,
    requests.map((r) => ({ ...r, maxNewTokens: 2 })),
    { maxRunning },
  );
  const pass = (phase: SessionPhase, options: Omit<ServeOptions, 'onStep'>) => {
    let finished = 0;
    return serve(model, rt, requests, {
      ...options,
      onStep: (i) => {
        for (; finished < i.finished; finished++) args.onProgress?.(phase, finished + 1, requests.length, `${i.kind} ×${i.requests}`);
      },
    });
  };
  const withLoRA = await pass('with LoRA', { maxRunning, ignoreSlotLimit: args.oneBatch });
  const withoutLoRA = await pass('without LoRA', { maxRunning, withoutLoRA: true });
  const byId = new Map(args.adapters.map((a) => [a.id, a]));
  let checked = 0;
  const checks = await checkAgainstMerged(args.config, args.modelConfig, args.weights, byId, withLoRA.generations, () =>
    args.onProgress?.('checking vs merged W', ++checked, requests.length, ''),
  );
  return {
    checks,
    lora: withLoRA.stats,
    base: withoutLoRA.stats,
    changedByLoRA: withLoRA.generations.filter(
      (g, i) => g.request.adapter !== null && g.tokens.join() !== withoutLoRA.generations[i]?.tokens.join(),
    ).length,
    withAdapter: requests.filter((r) => r.adapter !== null).length,
  };
}
