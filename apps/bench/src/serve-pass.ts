import type { LoRARuntime } from '@lora/core';
import { type CausalLM, Engine, type GenerateRequest, type StepInfo } from '@lora/llama';

/**
 * One pass of a queue through the Engine, split by kind of step: a step that prefills any prompt
 * tokens counts as prefill (with the decode tokens riding in it), any other as decode. With the
 * bench's schedule (every request admitted in the first step) the two never mix.
 */
export interface ServeStats {
  steps: number;
  prefillMs: number;
  decodeMs: number;
  /** Tokens of prefill steps (prompt tokens, and decode tokens in the same steps). */
  prefillTokens: number;
  /** Tokens of pure decode steps (one per running request). */
  decodeTokens: number;
  /** Adapters written into a device slot (first loads and re-activations after eviction). */
  activations: number;
}

export const tokensPerSecond = (s: ServeStats): number => (s.prefillTokens + s.decodeTokens) / ((s.prefillMs + s.decodeMs) / 1000);
export const decodeTokensPerSecond = (s: ServeStats): number => s.decodeTokens / (s.decodeMs / 1000);

/** Serves `requests` on a fresh Engine (continuous batching, up to `maxNumSeqs` at once) and sums its `onStep` reports. */
export async function servePass(
  model: CausalLM,
  runtime: LoRARuntime,
  requests: readonly GenerateRequest[],
  maxNumSeqs: number,
): Promise<ServeStats> {
  const stats: ServeStats = { steps: 0, prefillMs: 0, decodeMs: 0, prefillTokens: 0, decodeTokens: 0, activations: 0 };
  let slots = runtime.adapters.slots;
  const onStep = (s: StepInfo) => {
    stats.steps++;
    if (s.prefillTokens > 0) {
      stats.prefillMs += s.ms;
      stats.prefillTokens += s.prefillTokens + s.decodeTokens;
    } else {
      stats.decodeMs += s.ms;
      stats.decodeTokens += s.decodeTokens;
    }
    // A slot whose adapter changed in this step was (re)written.
    const now = runtime.adapters.slots;
    stats.activations += now.filter((id, i) => id !== null && id !== slots[i]).length;
    slots = now;
  };
  const engine = new Engine({ model, maxNumSeqs, onStep });
  try {
    await Promise.all(requests.map((r) => engine.add(r).result));
  } finally {
    await engine.close();
  }
  return stats;
}
