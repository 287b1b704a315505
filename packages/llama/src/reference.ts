import { type AdapterModuleWeights, describeValue, type LoRAAdapter, LoRAError } from '@lora/core';
import type { ModelConfig } from './config.js';
import { adapterStart } from './invocation.js';
import type { WeightMap } from './weights.js';

/**
 * A float64 forward pass of a Llama-family decoder written from the transformers semantics with
 * plain loops (no tfjs, nothing shared with `CausalLM` but the config): the oracle the model is
 * tested against. Slow (O(tokens² + tokens · weights)); for small models and short sequences.
 *
 * - `LlamaRMSNorm`: `w · x / sqrt(mean(x²) + eps)`.
 * - Rotary: `inv_freq = 1 / θ^(2i/d)` (Llama 3 scaling per `_compute_llama3_parameters`),
 *   rotate-half on q and k; `repeat_kv`: query head h reads KV head `floor(h / (heads / kvHeads))`.
 * - Attention: scores · 1/√d, causal, keys inside the sliding window on sliding layers, softmax.
 * - MLP: `down(silu(gate(x)) · up(x))`; lm_head on the final norm (the embedding when tied).
 * - With an adapter (PEFT LoRA, scale already in `AdapterModuleWeights.scale`): each targeted
 *   linear computes `x·(W + scale·B·A)ᵀ`, the embedding adds `scale·(B·A)ᵀ[token]`, lm_head too;
 *   a DoRA module (PEFT `lora/dora.py`) multiplies that by `m / ‖W + scale·B·A‖` per output (bias after).
 */
export function referenceLogits(
  config: ModelConfig,
  weights: WeightMap,
  tokens: ArrayLike<number>,
  adapter?: LoRAAdapter,
  options: {
    /**
     * The first position the adapter applies to (Activated LoRA). Default: PEFT's rule on `tokens`
     * — the start of the last occurrence of `adapter.invocationTokens` (none: the base model
     * throughout), 0 for a plain adapter. Pass the prompt's value when `tokens` includes generated ones.
     */
    adapterFrom?: number;
  } = {},
): Float64Array[] {
  const c = config;
  const H = c.hiddenSize;
  const hd = c.headDim;
  const T = tokens.length;
  const w = (name: string): Float32Array => {
    const data = weights.get(name);
    if (!(data instanceof Float32Array))
      throw new LoRAError('E_SHAPE', `referenceLogits: weights has no ${name}, got ${describeValue(data)}`);
    return data;
  };
  const from = options.adapterFrom ?? adapterStart(tokens, adapter?.invocationTokens);
  // PEFT's aLoRA mask: position t gets the adapter when t ≥ from.
  const lora = (module: string, t: number): AdapterModuleWeights | undefined => (t >= from ? adapter?.modules.get(module) : undefined);
  const linear = (x: Float64Array, module: string, outF: number, inF: number, bias: boolean, t: number): Float64Array => {
    const b = bias ? w(`${module}.bias`) : undefined;
    const y = loraLinear(w(`${module}.weight`), lora(module, t), x, outF, inF);
    if (b) for (let o = 0; o < outF; o++) y[o] = (y[o] as number) + (b[o] as number);
    return y;
  };
  const norm = (x: Float64Array, weight: string): Float64Array => {
    const g = w(weight);
    let ms = 0;
    for (const v of x) ms += v * v;
    const r = 1 / Math.sqrt(ms / x.length + c.rmsNormEps);
    return x.map((v, i) => (g[i] as number) * v * r);
  };

  // Embedding (+ PEFT embedding LoRA: B [D, r] · A[:, token] [r]; DoRA: times m / ‖column‖ per dimension).
  const E = w('model.embed_tokens.weight');
  let h = Array.from({ length: T }, (_, t) => {
    const embedLoRA = lora('model.embed_tokens', t);
    const id = tokens[t] as number;
    const x = Float64Array.from(E.subarray(id * H, (id + 1) * H));
    if (embedLoRA) {
      const r = embedLoRA.rank;
      const factors = embedLoRA.magnitude === undefined ? undefined : doraEmbeddingFactors(E, embedLoRA);
      for (let d = 0; d < H; d++) {
        let s = 0;
        for (let k = 0; k < r; k++) s += (embedLoRA.b[d * r + k] as number) * (embedLoRA.a[k * c.vocabSize + id] as number);
        x[d] = (x[d] as number) + embedLoRA.scale * s;
        if (factors !== undefined) x[d] = (factors[d] as number) * (x[d] as number);
      }
    }
    return x;
  });

  const invFreq = referenceInverseFrequencies(c);
  const rotate = (x: Float64Array, heads: number, p: number) => {
    const half = hd / 2;
    for (let head = 0; head < heads; head++) {
      for (let i = 0; i < half; i++) {
        const a = p * (invFreq[i] as number);
        const x1 = x[head * hd + i] as number;
        const x2 = x[head * hd + half + i] as number;
        x[head * hd + i] = x1 * Math.cos(a) - x2 * Math.sin(a);
        x[head * hd + half + i] = x2 * Math.cos(a) + x1 * Math.sin(a);
      }
    }
  };

  const q = c.numAttentionHeads * hd;
  const kv = c.numKeyValueHeads * hd;
  const group = c.numAttentionHeads / c.numKeyValueHeads;
  for (let l = 0; l < c.numHiddenLayers; l++) {
    const p = `model.layers.${l}`;
    const window = c.layerTypes[l] === 'sliding_attention' ? c.slidingWindow : null;
    const xs = h.map((x) => norm(x, `${p}.input_layernorm.weight`));
    const Q = xs.map((x, t) => {
      const y = linear(x, `${p}.self_attn.q_proj`, q, H, c.qkvBias, t);
      rotate(y, c.numAttentionHeads, t);
      return y;
    });
    const K = xs.map((x, t) => {
      const y = linear(x, `${p}.self_attn.k_proj`, kv, H, c.qkvBias, t);
      rotate(y, c.numKeyValueHeads, t);
      return y;
    });
    const V = xs.map((x, t) => linear(x, `${p}.self_attn.v_proj`, kv, H, c.qkvBias, t));
    h = h.map((resid, t) => {
      const out = new Float64Array(q);
      for (let head = 0; head < c.numAttentionHeads; head++) {
        const kvh = Math.floor(head / group);
        const visible: number[] = [];
        for (let j = 0; j <= t; j++) if (window === null || j > t - window) visible.push(j);
        const scores = visible.map((j) => {
          let s = 0;
          for (let d = 0; d < hd; d++) s += (Q[t]?.[head * hd + d] as number) * (K[j]?.[kvh * hd + d] as number);
          return s / Math.sqrt(hd);
        });
        const max = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - max));
        const sum = e.reduce((a, b) => a + b, 0);
        visible.forEach((j, n) => {
          for (let d = 0; d < hd; d++)
            out[head * hd + d] = (out[head * hd + d] as number) + ((e[n] as number) / sum) * (V[j]?.[kvh * hd + d] as number);
        });
      }
      const o = linear(out, `${p}.self_attn.o_proj`, H, q, c.oProjBias, t);
      const r1 = resid.map((v, i) => v + (o[i] as number));
      const x = norm(r1, `${p}.post_attention_layernorm.weight`);
      const gate = linear(x, `${p}.mlp.gate_proj`, c.intermediateSize, H, c.mlpBias, t);
      const up = linear(x, `${p}.mlp.up_proj`, c.intermediateSize, H, c.mlpBias, t);
      const act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * (up[i] as number));
      const down = linear(act, `${p}.mlp.down_proj`, H, c.intermediateSize, c.mlpBias, t);
      return r1.map((v, i) => v + (down[i] as number));
    });
  }

  const headName = c.tieWordEmbeddings ? 'model.embed_tokens' : 'lm_head';
  return h.map((x, t) => {
    const y = norm(x, 'model.norm.weight');
    return loraLinear(w(`${headName}.weight`), lora('lm_head', t), y, c.vocabSize, H);
  });
}

/**
 * `W·x + scale·B·(A·x)` in float64 (W `[out, in]`), and for a DoRA module (PEFT `lora/dora.py`)
 * `m / ‖W + scale·B·A‖ ⊙ (W·x + scale·B·A·x)`, the norm of each output row over the inputs. No bias.
 */
function loraLinear(W: Float32Array, m: AdapterModuleWeights | undefined, x: Float64Array, outF: number, inF: number): Float64Array {
  const y = new Float64Array(outF);
  for (let o = 0; o < outF; o++) {
    let s = 0;
    for (let i = 0; i < inF; i++) s += (W[o * inF + i] as number) * (x[i] as number);
    y[o] = s;
  }
  if (m === undefined) return y;
  // scale · B (A x): the same as x·(scale·B·A)ᵀ, exact in float64.
  const ax = new Float64Array(m.rank);
  for (let k = 0; k < m.rank; k++)
    for (let i = 0; i < inF; i++) ax[k] = (ax[k] as number) + (m.a[k * inF + i] as number) * (x[i] as number);
  const factors = m.magnitude === undefined ? undefined : doraFactors(W, m);
  for (let o = 0; o < outF; o++) {
    let s = 0;
    for (let k = 0; k < m.rank; k++) s += (m.b[o * m.rank + k] as number) * (ax[k] as number);
    y[o] = (y[o] as number) + m.scale * s;
    if (factors !== undefined) y[o] = (factors[o] as number) * (y[o] as number);
  }
  return y;
}

/** DoRA factors per module and base weight: they depend on neither the token nor the position. */
const DORA_FACTORS = new WeakMap<AdapterModuleWeights, WeakMap<Float32Array, Float64Array>>();

/** The factors of module `m` over weight `W`, made by `compute` the first time they are asked for. */
function memoFactors(m: AdapterModuleWeights, W: Float32Array, compute: () => Float64Array): Float64Array {
  let byWeight = DORA_FACTORS.get(m);
  if (byWeight === undefined) DORA_FACTORS.set(m, (byWeight = new WeakMap()));
  let f = byWeight.get(W);
  if (f === undefined) byWeight.set(W, (f = compute()));
  return f;
}

/** `m / ‖W + scale·B·A‖` per output row of a DoRA module, in float64, computed once per (module, W). */
function doraFactors(W: Float32Array, m: AdapterModuleWeights): Float64Array {
  return memoFactors(m, W, () => {
    const { outFeatures: outF, inFeatures: inF, rank } = m;
    const f = new Float64Array(outF);
    for (let o = 0; o < outF; o++) {
      let n2 = 0;
      for (let i = 0; i < inF; i++) {
        let d = 0;
        for (let k = 0; k < rank; k++) d += (m.b[o * rank + k] as number) * (m.a[k * inF + i] as number);
        n2 += ((W[o * inF + i] as number) + m.scale * d) ** 2;
      }
      f[o] = (m.magnitude?.[o] as number) / Math.sqrt(n2);
    }
    return f;
  });
}

/**
 * `m / ‖E[:, d] + scale·(B·A)ᵀ[:, d]‖` per embedding dimension d of a DoRA embedding (PEFT
 * `DoraEmbeddingLayer`: the norm over the vocabulary), in float64, once per (module, table).
 */
function doraEmbeddingFactors(E: Float32Array, m: AdapterModuleWeights): Float64Array {
  return memoFactors(m, E, () => {
    const { inFeatures: V, outFeatures: D, rank } = m;
    const n2 = new Float64Array(D);
    for (let v = 0; v < V; v++) {
      for (let d = 0; d < D; d++) {
        let delta = 0;
        for (let k = 0; k < rank; k++) delta += (m.b[d * rank + k] as number) * (m.a[k * V + v] as number);
        n2[d] = (n2[d] as number) + ((E[v * D + d] as number) + m.scale * delta) ** 2;
      }
    }
    return Float64Array.from(n2, (s, d) => (m.magnitude?.[d] as number) / Math.sqrt(s));
  });
}

/** `inv_freq` in float64 from the formulas (the model computes the same in float32, as torch does). */
function referenceInverseFrequencies(c: ModelConfig): Float64Array {
  const d = c.headDim;
  const inv = Float64Array.from({ length: d / 2 }, (_, i) => 1 / c.ropeTheta ** ((2 * i) / d));
  const s = c.ropeScaling;
  if (s === null) return inv;
  const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
  const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highWavelen) return f;
    if (wavelen > lowWavelen) return f / s.factor;
    const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    return ((1 - smooth) * f) / s.factor + smooth * f;
  });
}

/**
 * An adapter merged into the weights, `W + scale·B·A` per targeted module (DoRA: each row of it
 * times `m / ‖row‖`; float64 sums, stored as
 * float32): running the merged model without LoRA must give what the LoRA model gives. A model
 * with tied embeddings whose adapter touches embed_tokens or lm_head is returned untied (PEFT
 * wraps the two modules separately, so their deltas differ even though the base table is shared).
 */
export function mergeAdapter(
  config: ModelConfig,
  weights: WeightMap,
  adapter: LoRAAdapter,
): {
  /** `config` itself, or a frozen copy with `tieWordEmbeddings` false when the model had to be untied. */
  config: ModelConfig;
  /**
   * A new map by tensor name: the targeted weights as merged copies, the others the caller's arrays
   * (not copied), plus `lm_head.weight` when untied.
   */
  weights: Map<string, Float32Array>;
} {
  const merged = new Map(weights);
  let out = config;
  const untie = config.tieWordEmbeddings && (adapter.modules.has('lm_head') || adapter.modules.has('model.embed_tokens'));
  if (untie) {
    out = Object.freeze({ ...config, tieWordEmbeddings: false });
    merged.set('lm_head.weight', weights.get('model.embed_tokens.weight') as Float32Array);
  }
  for (const m of adapter.modules.values()) {
    const name = `${m.name}.weight`;
    const base = merged.get(name);
    if (!(base instanceof Float32Array))
      throw new LoRAError('E_SHAPE', `mergeAdapter: the adapter targets ${m.name}, which has no ${name} in the weights`);
    const w = Float32Array.from(base);
    // linear: W [out, in] += scale · B [out, r] · A [r, in]; embedding: W [V, D] += scale · (B [D, r] · A [r, V])ᵀ.
    const rows = m.kind === 'linear' ? m.outFeatures : m.inFeatures;
    const cols = m.kind === 'linear' ? m.inFeatures : m.outFeatures;
    if (w.length !== rows * cols) {
      throw new LoRAError(
        'E_SHAPE',
        `mergeAdapter: ${name} has ${w.length} values; the adapter's ${m.name} is ${m.inFeatures} → ${m.outFeatures}`,
      );
    }
    const merge = new Float64Array(rows * cols);
    for (let r = 0; r < rows; r++) {
      for (let col = 0; col < cols; col++) {
        const [o, i] = m.kind === 'linear' ? [r, col] : [col, r];
        let d = 0;
        for (let k = 0; k < m.rank; k++) d += (m.b[o * m.rank + k] as number) * (m.a[k * m.inFeatures + i] as number);
        merge[r * cols + col] = (w[r * cols + col] as number) + m.scale * d;
      }
    }
    // DoRA (PEFT `lora/layer.py` merge): each output of W + scale·B·A times m / its norm — a row of
    // a linear weight [out, in], a column (embedding dimension) of an embedding table [V, D].
    if (m.magnitude !== undefined) {
      const outputs = m.outFeatures;
      const at = (o: number, j: number) => (m.kind === 'linear' ? o * cols + j : j * cols + o);
      const along = m.kind === 'linear' ? cols : rows;
      for (let o = 0; o < outputs; o++) {
        let n2 = 0;
        for (let j = 0; j < along; j++) n2 += (merge[at(o, j)] as number) ** 2;
        const f = (m.magnitude[o] as number) / Math.sqrt(n2);
        for (let j = 0; j < along; j++) merge[at(o, j)] = f * (merge[at(o, j)] as number);
      }
    }
    w.set(merge);
    merged.set(name, w);
  }
  return { config: out, weights: merged };
}
