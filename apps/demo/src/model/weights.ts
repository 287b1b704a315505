import type { LoRAAdapter } from '@lora/core';
import { seeded, uniform } from '../rng.js';
import { type ModelConfig, moduleSpecs } from './config.js';

/**
 * Base weights by PEFT module name (torch layout `[out, in]`; the embedding `[V, D]`) plus the
 * norms. Seeded, so every run (and the browser playground) builds the same model.
 */
export interface BaseWeights {
  modules: Map<string, Float32Array>;
  /** Per layer: input norm and post-attention norm; then the final norm. */
  norms: Float32Array[];
}

export function seededWeights(c: ModelConfig, seed = 7): BaseWeights {
  const next = seeded(seed);
  const modules = new Map<string, Float32Array>();
  for (const m of moduleSpecs(c)) {
    // Embeddings of unit scale; linear layers scaled 1/√in so activations stay O(1) through the stack.
    const scale = m.kind === 'embedding' ? 1 : 1 / Math.sqrt(m.inFeatures);
    modules.set(m.name, uniform(next, m.inFeatures * m.outFeatures, scale * Math.sqrt(3)));
  }
  const norms = Array.from({ length: 2 * c.layers + 1 }, () => Float32Array.from(uniform(next, c.hidden, 0.1), (v) => 1 + v));
  return { modules, norms };
}

/**
 * The adapter merged into the base weights, `W + scale·B·A` per targeted module (float64 sums):
 * the reference each request is checked against.
 */
export function mergeAdapter(c: ModelConfig, weights: BaseWeights, adapter: LoRAAdapter): BaseWeights {
  const modules = new Map(weights.modules);
  for (const spec of moduleSpecs(c)) {
    const m = adapter.modules.get(spec.name);
    if (!m) continue;
    const w = Float32Array.from(weights.modules.get(spec.name) as Float32Array);
    if (spec.kind === 'linear') {
      // W [out, in] += scale · B [out, r] · A [r, in]
      for (let o = 0; o < spec.outFeatures; o++) {
        for (let h = 0; h < spec.inFeatures; h++) {
          let d = 0;
          for (let k = 0; k < m.rank; k++) d += (m.b[o * m.rank + k] as number) * (m.a[k * spec.inFeatures + h] as number);
          w[o * spec.inFeatures + h] = (w[o * spec.inFeatures + h] as number) + m.scale * d;
        }
      }
    } else {
      // Embedding [V, D] += scale · (B [D, r] · A [r, V])ᵀ
      const V = spec.inFeatures;
      const D = spec.outFeatures;
      for (let v = 0; v < V; v++) {
        for (let dd = 0; dd < D; dd++) {
          let d = 0;
          for (let k = 0; k < m.rank; k++) d += (m.b[dd * m.rank + k] as number) * (m.a[k * V + v] as number);
          w[v * D + dd] = (w[v * D + dd] as number) + m.scale * d;
        }
      }
    }
    modules.set(spec.name, w);
  }
  return { modules, norms: weights.norms };
}
