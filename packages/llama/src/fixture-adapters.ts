import { type PeftFiles, type SerializableDType, serializePeftAdapter } from '@lora/core';
import type { ModelConfig } from './config.js';
import { moduleSpecs } from './modules.js';
import { seeded, uniform } from './rng.js';

/** A seeded PEFT LoRA adapter to generate for a model. */
export interface AdapterSpec {
  /** The id the adapter is loaded under in the runtime, e.g. `sql-r8`. */
  readonly id: string;
  /** LoRA rank `r`: A is `[r, in]`, B is `[out, r]`. */
  readonly rank: number;
  /** `lora_alpha`: the update is scaled by alpha / r, or alpha / √r with `rslora`. */
  readonly alpha: number;
  /** PEFT short names (target_modules), e.g. `q_proj`, `embed_tokens`, `lm_head`. */
  readonly targets: readonly string[];
  /** `use_rslora` (default false): rank-stabilised scaling alpha / √r. */
  readonly rslora?: boolean;
  /** Storage dtype of adapter_model.safetensors (default F32). */
  readonly dtype?: SerializableDType;
  /** `use_dora` (default false): every module gets a DoRA magnitude vector (`[out]`; an embedding's `[D]`). */
  readonly dora?: boolean;
  /** `alora_invocation_tokens`: an activated LoRA, applied from the last occurrence of these tokens in a prompt on. */
  readonly invocationTokens?: readonly number[];
}

/** The demo's adapters: ranks 8/16/32, different target modules, one rsLoRA, one stored as BF16. */
export const DEMO_ADAPTERS: readonly AdapterSpec[] = [
  { id: 'sql-r8', rank: 8, alpha: 16, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] },
  { id: 'poet-r16', rank: 16, alpha: 32, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] },
  { id: 'translator-r32-rslora', rank: 32, alpha: 64, targets: ['embed_tokens', 'q_proj', 'v_proj', 'down_proj', 'lm_head'], rslora: true },
  { id: 'chat-r16-bf16', rank: 16, alpha: 16, targets: ['gate_proj', 'up_proj', 'down_proj', 'lm_head'], dtype: 'BF16' },
];

/**
 * The PEFT files of a seeded adapter for this model: what `save_pretrained` writes
 * (adapter_config.json + adapter_model.safetensors). A at PEFT's init scale (kaiming-uniform-like),
 * B as if trained away from zero, so the adapter visibly changes the output.
 */
export function adapterFiles(config: ModelConfig, spec: AdapterSpec, seed: number): PeftFiles {
  const next = seeded(seed);
  const modules = moduleSpecs(config)
    .filter((m) => spec.targets.includes(m.short))
    .map((m) => {
      const weights = {
        ...m,
        rank: spec.rank,
        a: uniform(next, spec.rank * m.inFeatures, Math.sqrt(3 / m.inFeatures)),
        b: uniform(next, m.outFeatures * spec.rank, 0.5 / Math.sqrt(spec.rank)),
      };
      // The seeded base rows have norms near 1; a trained magnitude stays near the norm it started from.
      return spec.dora === true ? { ...weights, magnitude: uniform(next, m.outFeatures, 0.25).map((v) => 1 + v) } : weights;
    });
  const peftConfig = {
    r: spec.rank,
    lora_alpha: spec.alpha,
    target_modules: [...spec.targets],
    use_rslora: spec.rslora ?? false,
    use_dora: spec.dora ?? false,
    ...(spec.invocationTokens === undefined ? {} : { alora_invocation_tokens: [...spec.invocationTokens] }),
    task_type: 'CAUSAL_LM',
  };
  return serializePeftAdapter(modules, peftConfig, spec.dtype ?? 'F32');
}
