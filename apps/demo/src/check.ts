import { createLoRA, type LoRAAdapter, type LoRAConfig } from '@lora/core';
import { CausalLM, greedy, type ModelConfig, mergeAdapter, Sequence, type WeightMap } from '@lora/llama';
import type { Generation } from './serve.js';

export interface CheckResult {
  generation: Generation;
  reference: number[];
  pass: boolean;
  /** Set when the tokens diverge at a near-tie of the reference logits (not a LoRA error). */
  tieAt?: number;
}

/** Logit gap under which two greedy paths may pick different tokens from float rounding alone. */
export const TIE_MARGIN = 1e-4;
/**
 * The same for backends that round LoRA operands to bfloat16 (tpu-sim: 8 significant bits, the
 * DESIGN's 3e-2 accuracy promise): measured flips on the demo model happen at gaps of 3e-3–4e-3.
 */
export const BF16_TIE_MARGIN = 1e-2;
const BF16_BACKENDS = new Set(['tpu-sim']);

/**
 * Runs every request alone, greedily, on the base model with its adapter merged into the weights
 * (`W + scale·B·A`, no LoRA kernels involved), and compares the tokens with the batched run.
 */
export async function checkAgainstMerged(
  /** The serving config: the reference runs use the same backend and backend options. */
  lora: LoRAConfig,
  config: ModelConfig,
  weights: WeightMap,
  adapters: ReadonlyMap<string, LoRAAdapter>,
  generations: readonly Generation[],
  onRequest?: () => void,
): Promise<CheckResult[]> {
  const byAdapter = new Map<string | null, Generation[]>();
  for (const g of generations) byAdapter.set(g.request.adapter, [...(byAdapter.get(g.request.adapter) ?? []), g]);
  const results: CheckResult[] = [];
  for (const [adapterId, gens] of byAdapter) {
    const merged = adapterId === null ? { config, weights } : mergeAdapter(config, weights, adapters.get(adapterId) as LoRAAdapter);
    const rt = await createLoRA({ ...lora, maxLoras: 1, maxLoraRank: 1, maxCpuLoras: 1 });
    const model = new CausalLM(rt, merged.config, merged.weights);
    try {
      for (const g of gens) {
        const seq = new Sequence();
        const reference: number[] = [];
        const margins: number[] = [];
        let input = g.request.prompt;
        try {
          while (reference.length < g.request.maxNewTokens) {
            rt.adapters.setBatch([null], [input.length]);
            const out = greedy(await model.forward([{ seq, tokens: input }]), config.vocabSize);
            reference.push(out.tokens[0] as number);
            margins.push(out.margins[0] as number);
            input = Int32Array.of(out.tokens[0] as number);
          }
        } finally {
          seq.dispose();
        }
        const diverge = reference.findIndex((t, i) => t !== g.tokens[i]);
        const tieMargin = BF16_BACKENDS.has(rt.backend.name) ? BF16_TIE_MARGIN : TIE_MARGIN;
        const tie = diverge >= 0 && Math.min(margins[diverge] as number, g.margins[diverge] as number) < tieMargin ? diverge : undefined;
        results.push({ generation: g, reference, pass: diverge < 0 || tie !== undefined, ...(tie !== undefined ? { tieAt: tie } : {}) });
        onRequest?.();
      }
    } finally {
      model.dispose();
      rt.dispose();
    }
  }
  return results.sort((a, b) => a.generation.request.id - b.generation.request.id);
}
