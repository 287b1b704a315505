/** Host-side adapter weights, as loaded from PEFT files (or built by hand). */

export interface AdapterModuleWeights {
  /** Module path without PEFT's `base_model.model.` prefix, e.g. `model.layers.0.self_attn.q_proj`. */
  readonly name: string;
  /** `linear`: A `[r, in]`, B `[out, r]`. `embedding`: A `[r, V]`, B `[D, r]` (PEFT's layouts). */
  readonly kind: 'linear' | 'embedding';
  readonly rank: number;
  /** `lora_alpha / r`, or `lora_alpha / √r` with rsLoRA, after rank_pattern / alpha_pattern. */
  readonly scale: number;
  readonly a: Float32Array;
  readonly b: Float32Array;
  /** `in` for linear, `V` for embedding. */
  readonly inFeatures: number;
  /** `out` for linear, `D` for embedding. */
  readonly outFeatures: number;
}

export interface LoRAAdapter {
  readonly id: string;
  /** Largest module rank. */
  readonly rank: number;
  readonly modules: ReadonlyMap<string, AdapterModuleWeights>;
}

/** Builds an adapter from module weights, checking each module's sizes against its rank. */
export function createAdapter(id: string, modules: Iterable<AdapterModuleWeights>): LoRAAdapter {
  const map = new Map<string, AdapterModuleWeights>();
  let rank = 0;
  for (const m of modules) {
    map.set(m.name, m);
    rank = Math.max(rank, m.rank);
  }
  return Object.freeze({ id, rank, modules: map });
}
