import { createLoRA, type LoRAAdapter, type LoRAConfig } from '@lora/core';
import type { ModelConfig } from '../config.js';
import type { GenerationResult } from '../engine/handle.js';
import { greedy } from '../greedy.js';
import { CausalLM } from '../model.js';
import { mergeAdapter } from '../reference.js';
import { Sequence } from '../sequence.js';
import type { WeightMap } from '../weights.js';

/**
 * One served request checked by {@link checkAgainstMerged}: its tokens against the same request
 * run alone, greedily, on its adapter merged into the weights.
 */
export interface CheckResult {
  /** The request as the engine served it (with LoRA, batched with others). */
  readonly result: GenerationResult;
  /** The tokens of the same request run alone on `W + scale·B·A`. */
  readonly reference: readonly number[];
  /** The served tokens equal the reference, or first differ at a near-tie (`tieAt`). */
  readonly pass: boolean;
  /** Set when the tokens part at a near-tie of the reference logits (float rounding, not a LoRA error). */
  readonly tieAt?: number;
}

/**
 * The logit gap under which two greedy paths may part from float rounding alone: float32 backends
 * (accuracy 1e-4) rarely part at gaps above 1e-4; backends with bfloat16 operands (tpu-sim, 3e-2)
 * were measured parting at gaps of 3e-3–4e-3 on the demo model.
 */
export function tieMargin(accuracy: number): number {
  return accuracy <= 1e-4 ? 1e-4 : 1e-2;
}

/**
 * Runs every request alone, greedily, on the base model with its adapter merged into the weights
 * (`W + scale·B·A` in float64, no LoRA kernels involved), on a runtime made from `lora` (same
 * backend and options), and compares its tokens with the served ones.
 */
export async function checkAgainstMerged(args: {
  lora: LoRAConfig;
  config: ModelConfig;
  weights: WeightMap;
  adapters: ReadonlyMap<string, LoRAAdapter>;
  results: readonly GenerationResult[];
  onRequest?: () => void;
}): Promise<CheckResult[]> {
  const byAdapter = new Map<string | null, GenerationResult[]>();
  for (const r of args.results) byAdapter.set(r.adapter, [...(byAdapter.get(r.adapter) ?? []), r]);
  const checks: CheckResult[] = [];
  for (const [adapterId, results] of byAdapter) {
    const merged =
      adapterId === null
        ? { config: args.config, weights: args.weights }
        : mergeAdapter(args.config, args.weights, args.adapters.get(adapterId) as LoRAAdapter);
    const runtime = await createLoRA({ ...args.lora, maxLoras: 1, maxLoraRank: 1, maxCpuLoras: 1 });
    const model = new CausalLM(runtime, merged.config, merged.weights);
    const margin = tieMargin(runtime.backend.accuracy ?? 1e-4);
    try {
      for (const r of results) {
        const seq = new Sequence();
        const reference: number[] = [];
        const margins: number[] = [];
        let input = Int32Array.from(r.promptIds);
        try {
          while (reference.length < r.tokenIds.length) {
            runtime.adapters.setBatch([null], [input.length]);
            const out = greedy(await model.forward([{ seq, tokens: input }]), merged.config.vocabSize);
            reference.push(out.tokens[0] as number);
            margins.push(out.margins[0] as number);
            input = Int32Array.of(out.tokens[0] as number);
          }
        } finally {
          seq.dispose();
        }
        const diverge = reference.findIndex((t, i) => t !== r.tokenIds[i]);
        const tie = diverge >= 0 && (margins[diverge] as number) < margin ? diverge : undefined;
        checks.push({ result: r, reference, pass: diverge < 0 || tie !== undefined, ...(tie !== undefined ? { tieAt: tie } : {}) });
        args.onRequest?.();
      }
    } finally {
      model.dispose();
      runtime.dispose();
    }
  }
  const order = new Map(args.results.map((r, i) => [r.id, i]));
  return checks.sort((a, b) => (order.get(a.result.id) as number) - (order.get(b.result.id) as number));
}
