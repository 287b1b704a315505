import type { ModelConfig } from './config.js';

/**
 * The module catalogue of a Llama-family decoder: what a PEFT adapter may target (module names as
 * PEFT writes them, after its `base_model.model.` prefix) and which tensors a Hugging Face
 * checkpoint holds, with their shapes. Names follow transformers `LlamaForCausalLM`,
 * `MistralForCausalLM` and `Qwen2ForCausalLM`, which share one layout.
 */

/** Width of q_proj's output (and o_proj's input): `num_attention_heads × head_dim`. */
export const qWidth = (c: ModelConfig): number => c.numAttentionHeads * c.headDim;
/** Width of k_proj's and v_proj's outputs: `num_key_value_heads × head_dim`. */
export const kvWidth = (c: ModelConfig): number => c.numKeyValueHeads * c.headDim;

/** One LoRA-targetable module: PEFT name, short name (as in target_modules) and A/B sizes. */
export interface ModuleSpec {
  /** Full PEFT module name, e.g. `model.layers.0.self_attn.q_proj`, `model.embed_tokens` or `lm_head`. */
  readonly name: string;
  /** The name's last component, e.g. `q_proj`: what `target_modules` lists. */
  readonly short: string;
  /** `embedding` for `model.embed_tokens` (LoRA on a lookup table), `linear` for every projection and `lm_head`. */
  readonly kind: 'linear' | 'embedding';
  /** `in` for linear (A is `[r, in]`), the vocabulary for the embedding (A is `[r, V]`). */
  readonly inFeatures: number;
  /** `out` for linear (B is `[out, r]`), the hidden size for the embedding (B is `[D, r]`). */
  readonly outFeatures: number;
}

/** PEFT module names of layer `i`'s projections. */
export function layerModules(i: number) {
  const attn = `model.layers.${i}.self_attn`;
  const mlp = `model.layers.${i}.mlp`;
  return {
    q: `${attn}.q_proj`,
    k: `${attn}.k_proj`,
    v: `${attn}.v_proj`,
    o: `${attn}.o_proj`,
    gate: `${mlp}.gate_proj`,
    up: `${mlp}.up_proj`,
    down: `${mlp}.down_proj`,
    inputNorm: `model.layers.${i}.input_layernorm`,
    postAttentionNorm: `model.layers.${i}.post_attention_layernorm`,
  } as const;
}

export const EMBED_TOKENS = 'model.embed_tokens';
export const FINAL_NORM = 'model.norm';
export const LM_HEAD = 'lm_head';

/** Every module a LoRA adapter may target, embedding first and lm_head last. */
export function moduleSpecs(c: ModelConfig): ModuleSpec[] {
  const specs: ModuleSpec[] = [
    { name: EMBED_TOKENS, short: 'embed_tokens', kind: 'embedding', inFeatures: c.vocabSize, outFeatures: c.hiddenSize },
  ];
  const linear = (name: string, inFeatures: number, outFeatures: number): ModuleSpec => ({
    name,
    short: name.slice(name.lastIndexOf('.') + 1),
    kind: 'linear',
    inFeatures,
    outFeatures,
  });
  for (let i = 0; i < c.numHiddenLayers; i++) {
    const m = layerModules(i);
    specs.push(
      linear(m.q, c.hiddenSize, qWidth(c)),
      linear(m.k, c.hiddenSize, kvWidth(c)),
      linear(m.v, c.hiddenSize, kvWidth(c)),
      linear(m.o, qWidth(c), c.hiddenSize),
      linear(m.gate, c.hiddenSize, c.intermediateSize),
      linear(m.up, c.hiddenSize, c.intermediateSize),
      linear(m.down, c.intermediateSize, c.hiddenSize),
    );
  }
  specs.push(linear(LM_HEAD, c.hiddenSize, c.vocabSize));
  return specs;
}

/**
 * The tensors the model keeps as one packed weight, each group in packing order: q/k/v and
 * gate/up per layer, weights and (where the config has them) biases, as `DecoderLayer` packs
 * them. The loader decodes each group into one array, which `WeightTaker.pack` then takes as it
 * is; were the two orders ever to differ, `pack` would copy instead (slower, still right).
 */
export function packedTensors(c: ModelConfig): string[][] {
  const groups: string[][] = [];
  for (let i = 0; i < c.numHiddenLayers; i++) {
    const m = layerModules(i);
    const qkv = [m.q, m.k, m.v];
    const gateUp = [m.gate, m.up];
    groups.push(
      qkv.map((n) => `${n}.weight`),
      gateUp.map((n) => `${n}.weight`),
    );
    if (c.qkvBias) groups.push(qkv.map((n) => `${n}.bias`));
    if (c.mlpBias) groups.push(gateUp.map((n) => `${n}.bias`));
  }
  return groups;
}

/** One tensor of a checkpoint: its name in the safetensors files and its shape (torch layout). */
export interface TensorSpec {
  /** Name in the safetensors files, e.g. `model.layers.0.mlp.down_proj.weight`. */
  readonly name: string;
  /** torch shape: `[out, in]` for a linear weight, `[vocab, hidden]` for the embedding and lm_head, `[n]` for biases and norms. */
  readonly shape: readonly number[];
}

/**
 * Every tensor the checkpoint must hold, in the order of the model's `state_dict()` (the order
 * transformers shards in): `lm_head.weight` only when the embeddings are not tied, biases only
 * where the config has them.
 */
export function checkpointTensors(c: ModelConfig): TensorSpec[] {
  const H = c.hiddenSize;
  const I = c.intermediateSize;
  const out: TensorSpec[] = [{ name: `${EMBED_TOKENS}.weight`, shape: [c.vocabSize, H] }];
  const linear = (name: string, outF: number, inF: number, bias: boolean) => {
    out.push({ name: `${name}.weight`, shape: [outF, inF] });
    if (bias) out.push({ name: `${name}.bias`, shape: [outF] });
  };
  for (let i = 0; i < c.numHiddenLayers; i++) {
    const m = layerModules(i);
    linear(m.q, qWidth(c), H, c.qkvBias);
    linear(m.k, kvWidth(c), H, c.qkvBias);
    linear(m.v, kvWidth(c), H, c.qkvBias);
    linear(m.o, H, qWidth(c), c.oProjBias);
    linear(m.gate, I, H, c.mlpBias);
    linear(m.up, I, H, c.mlpBias);
    linear(m.down, H, I, c.mlpBias);
    out.push({ name: `${m.inputNorm}.weight`, shape: [H] }, { name: `${m.postAttentionNorm}.weight`, shape: [H] });
  }
  out.push({ name: `${FINAL_NORM}.weight`, shape: [H] });
  if (!c.tieWordEmbeddings) out.push({ name: `${LM_HEAD}.weight`, shape: [c.vocabSize, H] });
  return out;
}

/**
 * Tensors a checkpoint may hold that transformers itself skips without a warning: the rotary
 * inverse frequencies older Llama checkpoints saved per layer (transformers
 * `LlamaPreTrainedModel._keys_to_ignore_on_load_unexpected = [r"self_attn\.rotary_emb\.inv_freq"]`,
 * 4.2x–4.3x) or once (`model.rotary_emb.inv_freq`, a non-persistent buffer since 4.4x, removed
 * from the unexpected keys as a model buffer). They are recomputed from the config.
 */
export function isIgnoredTensor(name: string): boolean {
  return /^model\.(layers\.\d+\.self_attn\.)?rotary_emb\.inv_freq$/.test(name);
}

/** Elements of a tensor shape. */
export const elements = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Bytes of the model's weights as float32 (tied embeddings counted once). */
export function modelFloat32Bytes(c: ModelConfig): number {
  return 4 * checkpointTensors(c).reduce((n, t) => n + elements(t.shape), 0);
}
