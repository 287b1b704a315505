import { describeValue, LoRAError } from '@lora/core';
import { ConfigFields } from './config-fields.js';
import { modelFloat32Bytes } from './modules.js';

/**
 * A Hugging Face `config.json` for one of the Llama-family decoders, normalised. Only fields that
 * change the math are kept; everything that would change it and is not implemented is refused
 * (`E_UNSUPPORTED`, naming the field), so a loaded model never silently computes something else
 * than transformers would.
 */

/** The `architectures` class names (config.json) this package implements; any other is refused with E_UNSUPPORTED. */
export const SUPPORTED_ARCHITECTURES = ['LlamaForCausalLM', 'MistralForCausalLM', 'Qwen2ForCausalLM'] as const;
/**
 * A supported transformers model class, taken from config.json `architectures` or, failing that,
 * from `model_type` ("llama", "mistral", "qwen2"). It picks the model class and which config fields
 * count (biases, sliding window).
 */
export type Architecture = (typeof SUPPORTED_ARCHITECTURES)[number];

const MODEL_TYPES: ReadonlyMap<string, Architecture> = new Map([
  ['llama', 'LlamaForCausalLM'],
  ['mistral', 'MistralForCausalLM'],
  ['qwen2', 'Qwen2ForCausalLM'],
]);

/** transformers `modeling_rope_utils.py` `_compute_llama3_parameters` (Llama 3.1+). */
export interface Llama3RopeScaling {
  /** `rope_scaling.rope_type` (or the legacy `type`): the only scaling implemented besides "default". */
  readonly ropeType: 'llama3';
  /** `factor`: low frequencies (wavelength above `originalMaxPositionEmbeddings / lowFreqFactor`) are divided by it. */
  readonly factor: number;
  /** `low_freq_factor`: sets the wavelength above which a frequency is fully scaled; less than `highFreqFactor`. */
  readonly lowFreqFactor: number;
  /** `high_freq_factor`: sets the wavelength below which a frequency is kept; between the two bands it is interpolated. */
  readonly highFreqFactor: number;
  /** `original_max_position_embeddings`: the context length the model was pretrained with, in tokens. */
  readonly originalMaxPositionEmbeddings: number;
}

/** transformers' per-layer attention kind (`config.layer_types`). */
export type LayerType = 'full_attention' | 'sliding_attention';

/**
 * A parsed, validated and frozen config.json (see {@link parseModelConfig}): the transformers
 * fields that determine the weights' shapes and the forward pass, camelCased, with transformers'
 * defaults filled in.
 */
export interface ModelConfig {
  /** The model class (`architectures` / `model_type`). */
  readonly architecture: Architecture;
  /** `hidden_size`: width of the residual stream, embeddings and norms. */
  readonly hiddenSize: number;
  /** `intermediate_size`: width of the SwiGLU MLP (gate_proj and up_proj outputs, down_proj input). */
  readonly intermediateSize: number;
  /** `num_hidden_layers`: number of decoder layers. */
  readonly numHiddenLayers: number;
  /** `num_attention_heads`: query heads per layer. */
  readonly numAttentionHeads: number;
  /** `num_key_value_heads` (default `num_attention_heads`): key/value heads, a divisor of the query heads (grouped-query attention). */
  readonly numKeyValueHeads: number;
  /** `head_dim`, or `hidden_size // num_attention_heads` when the config has none. */
  readonly headDim: number;
  /** `vocab_size`: rows of the embedding and of the LM head (logits per position). */
  readonly vocabSize: number;
  /** `rms_norm_eps` (default 1e-6): the epsilon added to the mean square in every RMSNorm. */
  readonly rmsNormEps: number;
  /** `rope_theta` (default 10000), or `rope_parameters.rope_theta` in transformers 5: the rotary base. */
  readonly ropeTheta: number;
  /** null: plain rotary (`rope_type` "default"). */
  readonly ropeScaling: Llama3RopeScaling | null;
  /**
   * `tie_word_embeddings` (default false): the LM head reuses `model.embed_tokens.weight`; the
   * checkpoint needs no `lm_head.weight` (the loader accepts one only if it equals the embedding).
   */
  readonly tieWordEmbeddings: boolean;
  /**
   * `max_position_embeddings` (default 2048 for Llama, 131072 for Mistral, 32768 for Qwen2, as in
   * transformers' config classes): the most tokens a sequence may reach; the model refuses longer.
   */
  readonly maxPositionEmbeddings: number;
  /** Bias on q_proj, k_proj, v_proj: always for Qwen2, with `attention_bias` for Llama. */
  readonly qkvBias: boolean;
  /** Bias on o_proj: Llama with `attention_bias` (Qwen2's o_proj has none). */
  readonly oProjBias: boolean;
  /** Bias on gate_proj, up_proj, down_proj: Llama with `mlp_bias`. */
  readonly mlpBias: boolean;
  /**
   * On a `sliding_attention` layer a query attends to the last `slidingWindow` positions, itself
   * included (transformers `masking_utils.py` `sliding_window_overlay`: `kv_idx > q_idx - window`).
   * null when no layer has a window.
   */
  readonly slidingWindow: number | null;
  /**
   * The attention kind of each layer, `numHiddenLayers` entries: every layer for Mistral with a
   * `sliding_window`, Qwen2's `layer_types` (or the layers from `max_window_layers` on) when
   * `use_sliding_window`, and otherwise all "full_attention".
   */
  readonly layerTypes: readonly LayerType[];
  /** `bos_token_id`, or null when the config has none. */
  readonly bosTokenId: number | null;
  /** `eos_token_id` as a list (configs give one id or several). */
  readonly eosTokenIds: readonly number[];
}

/** Options of {@link parseModelConfig} (and of the loaders that parse a config.json). */
export interface ParseConfigOptions {
  /**
   * Refuse configs whose weights take more than this many bytes as float32 (default
   * `DEFAULT_MAX_MODEL_BYTES`): a hostile or mistaken config.json must not make the loader
   * allocate terabytes.
   */
  readonly maxModelBytes?: number;
}

/** 8 GiB of float32 weights: a 2B-parameter model. Pass `maxModelBytes` to load larger ones. */
export const DEFAULT_MAX_MODEL_BYTES = 8 * 2 ** 30;

/**
 * Bounds on each size, far above any released model of these families, so that the products the
 * size check computes stay exact doubles whatever a config says.
 */
const LIMITS = {
  hiddenSize: 2 ** 17,
  intermediateSize: 2 ** 19,
  numHiddenLayers: 2 ** 10,
  numAttentionHeads: 2 ** 10,
  headDim: 2 ** 11,
  vocabSize: 2 ** 22,
  maxPositionEmbeddings: 2 ** 24,
} as const;

/** transformers' defaults where a config may omit a field (LlamaConfig, MistralConfig, Qwen2Config). */
const DEFAULT_MAX_POSITIONS: Record<Architecture, number> = {
  LlamaForCausalLM: 2048,
  MistralForCausalLM: 4096 * 32,
  Qwen2ForCausalLM: 32768,
};

function architectureOf(f: ConfigFields): Architecture {
  const supported = SUPPORTED_ARCHITECTURES.join(', ');
  const listed = f.get('architectures');
  let fromList: Architecture | undefined;
  if (listed !== undefined) {
    if (!Array.isArray(listed) || listed.length === 0 || listed.length > 16 || !listed.every((a) => typeof a === 'string')) {
      f.fail('architectures', 'a non-empty list of class names such as ["LlamaForCausalLM"]');
    }
    const known = (listed as string[]).filter((a): a is Architecture => (SUPPORTED_ARCHITECTURES as readonly string[]).includes(a));
    if (known.length === 0) {
      throw new LoRAError(
        'E_UNSUPPORTED',
        `${f.from}: architectures ${JSON.stringify((listed as string[]).slice(0, 4)).slice(0, 200)} is not supported; supported: ${supported}`,
      );
    }
    if (new Set(known).size > 1) f.fail('architectures', 'one architecture');
    fromList = known[0];
  }
  const modelType = f.string('model_type');
  const fromType = modelType === undefined ? undefined : MODEL_TYPES.get(modelType);
  if (modelType !== undefined && fromType === undefined && fromList === undefined) {
    throw new LoRAError(
      'E_UNSUPPORTED',
      `${f.from}: model_type ${JSON.stringify(modelType.slice(0, 60))} is not supported; supported: ${[...MODEL_TYPES.keys()].join(', ')} (${supported})`,
    );
  }
  if (fromList !== undefined && modelType !== undefined && fromType !== fromList) {
    throw new LoRAError(
      'E_CONFIG',
      `${f.from}: architectures says ${fromList} but model_type is ${JSON.stringify(modelType.slice(0, 60))}; a checkpoint of ${fromList} has model_type "${[...MODEL_TYPES].find(([, a]) => a === fromList)?.[0]}"`,
    );
  }
  const arch = fromList ?? fromType;
  if (arch === undefined) {
    throw new LoRAError('E_UNSUPPORTED', `${f.from} names no architecture (neither architectures nor model_type); supported: ${supported}`);
  }
  return arch;
}

/**
 * Rotary parameters: `rope_theta` + `rope_scaling` (transformers 4.x) or `rope_parameters`
 * (transformers 5, which holds `rope_theta` too). `rope_type` "default" and "llama3" are
 * implemented; linear, dynamic, yarn, longrope... are refused by name.
 */
function rotaryOf(f: ConfigFields): { ropeTheta: number; ropeScaling: Llama3RopeScaling | null } {
  const v5 = f.object('rope_parameters');
  const scaling = v5 ?? f.object('rope_scaling');
  const ropeTheta = v5 ? v5.positive('rope_theta', 1e12) : f.positive('rope_theta', 1e12, 10000);
  if (f.has('partial_rotary_factor') && f.get('partial_rotary_factor') !== 1) {
    f.fail('partial_rotary_factor', '1 (partial rotary embeddings are not implemented)', 'E_UNSUPPORTED');
  }
  if (scaling === undefined) return { ropeTheta, ropeScaling: null };
  // transformers moves a legacy "type" key to "rope_type" (`rope_config_validation`).
  const type = scaling.string('rope_type') ?? scaling.string('type') ?? 'default';
  if (type === 'default') return { ropeTheta, ropeScaling: null };
  if (type !== 'llama3') scaling.fail('rope_type', '"default" or "llama3" (the rope types implemented)', 'E_UNSUPPORTED');
  const ropeScaling: Llama3RopeScaling = {
    ropeType: 'llama3',
    factor: scaling.positive('factor', 1e6),
    lowFreqFactor: scaling.positive('low_freq_factor', 1e6),
    highFreqFactor: scaling.positive('high_freq_factor', 1e6),
    originalMaxPositionEmbeddings: scaling.int('original_max_position_embeddings', 1, LIMITS.maxPositionEmbeddings),
  };
  // transformers only warns here; with low ≥ high the smoothing divides by zero or inverts the bands.
  if (ropeScaling.lowFreqFactor >= ropeScaling.highFreqFactor) {
    scaling.fail('low_freq_factor', `less than high_freq_factor (${ropeScaling.highFreqFactor})`);
  }
  return { ropeTheta, ropeScaling: Object.freeze(ropeScaling) };
}

/**
 * Which layers have a sliding window, as transformers decides it:
 * - Mistral (`MistralAttention`): every layer uses `config.sliding_window` (null = none).
 * - Qwen2 (`Qwen2Config.__init__`, transformers ≥ 4.53): `sliding_window` counts only when
 *   `use_sliding_window`; `layer_types` (given, or "sliding_attention" for layers
 *   `i >= max_window_layers`) says which layers use it. Earlier transformers releases applied the
 *   window inconsistently between attention implementations; this is the current, consistent rule.
 * - Llama: no sliding window (LlamaConfig has no such field; one in the file is ignored, as there).
 */
function slidingOf(f: ConfigFields, arch: Architecture, layers: number): { slidingWindow: number | null; layerTypes: LayerType[] } {
  if (arch === 'MistralForCausalLM') {
    const w = f.has('sliding_window') ? f.int('sliding_window', 1, LIMITS.maxPositionEmbeddings) : null;
    return { slidingWindow: w, layerTypes: Array(layers).fill(w === null ? 'full_attention' : 'sliding_attention') };
  }
  if (arch === 'Qwen2ForCausalLM') {
    // Qwen2Config defaults: sliding_window 4096, max_window_layers 28.
    const w = f.bool('use_sliding_window', false) ? f.int('sliding_window', 1, LIMITS.maxPositionEmbeddings, 4096) : null;
    const given = f.get('layer_types');
    let types: LayerType[];
    if (given !== undefined) {
      const ok = Array.isArray(given) && given.length === layers && given.every((t) => t === 'full_attention' || t === 'sliding_attention');
      if (!ok) f.fail('layer_types', `a list of ${layers} (num_hidden_layers) "full_attention" / "sliding_attention" entries`);
      types = given as LayerType[];
    } else {
      const first = f.int('max_window_layers', 0, LIMITS.numHiddenLayers, 28);
      types = Array.from({ length: layers }, (_, i) => (w !== null && i >= first ? 'sliding_attention' : 'full_attention'));
    }
    // Qwen2Attention: `sliding_window if layer_type == "sliding_attention" else None`, and
    // sliding_window is None unless use_sliding_window.
    if (w === null) types = types.map(() => 'full_attention');
    return { slidingWindow: types.includes('sliding_attention') ? w : null, layerTypes: types };
  }
  return { slidingWindow: null, layerTypes: Array(layers).fill('full_attention') };
}

/** Fields that would change the math in ways this implementation does not follow. */
function refuseUnsupported(f: ConfigFields, arch: Architecture): void {
  const act = f.string('hidden_act', 'silu');
  // ACT2FN maps both names to nn.SiLU.
  if (act !== 'silu' && act !== 'swish') f.fail('hidden_act', '"silu" (SwiGLU; other activations are not implemented)', 'E_UNSUPPORTED');
  if (f.has('quantization_config')) {
    f.fail('quantization_config', 'absent (quantized checkpoints are not supported; use a float16/bfloat16/float32 one)', 'E_UNSUPPORTED');
  }
  // pretraining_tp > 1 only makes transformers split the same matmuls into slices: the math is unchanged.
  if (arch === 'LlamaForCausalLM') f.int('pretraining_tp', 1, 1024, 1);
}

/**
 * Parses a config.json (text or parsed JSON). `from` names the file in every message. Throws
 * E_UNSUPPORTED for architectures and options that are not implemented, E_CONFIG for invalid
 * values and E_CAPACITY for a model larger than `maxModelBytes` as float32.
 */
export function parseModelConfig(json: unknown, from: string, options: ParseConfigOptions = {}): ModelConfig {
  let parsed = json;
  if (typeof json === 'string') {
    try {
      parsed = JSON.parse(json);
    } catch (err) {
      throw new LoRAError('E_FORMAT', `${from} is not valid JSON (${(err as Error).message.slice(0, 200)})`);
    }
  }
  const f = new ConfigFields(parsed, from);
  const architecture = architectureOf(f);
  refuseUnsupported(f, architecture);
  const hiddenSize = f.int('hidden_size', 1, LIMITS.hiddenSize);
  const intermediateSize = f.int('intermediate_size', 1, LIMITS.intermediateSize);
  const numHiddenLayers = f.int('num_hidden_layers', 1, LIMITS.numHiddenLayers);
  const numAttentionHeads = f.int('num_attention_heads', 1, LIMITS.numAttentionHeads);
  const numKeyValueHeads = f.int('num_key_value_heads', 1, numAttentionHeads, numAttentionHeads);
  if (numAttentionHeads % numKeyValueHeads !== 0) {
    f.fail('num_key_value_heads', `a divisor of num_attention_heads (${numAttentionHeads}) for grouped-query attention`);
  }
  // LlamaAttention: `getattr(config, "head_dim", None) or hidden_size // num_attention_heads`.
  const headDim = f.int('head_dim', 1, LIMITS.headDim, Math.floor(hiddenSize / numAttentionHeads));
  if (headDim < 2 || headDim % 2 !== 0) {
    throw new LoRAError(
      'E_CONFIG',
      `${from}: head_dim (${f.has('head_dim') ? 'given' : `hidden_size ${hiddenSize} // num_attention_heads ${numAttentionHeads}`}) is ${headDim}; rotary embeddings need an even head_dim ≥ 2`,
    );
  }
  const vocabSize = f.int('vocab_size', 1, LIMITS.vocabSize);
  const { ropeTheta, ropeScaling } = rotaryOf(f);
  const llama = architecture === 'LlamaForCausalLM';
  const attentionBias = llama && f.bool('attention_bias', false);
  const config: ModelConfig = {
    architecture,
    hiddenSize,
    intermediateSize,
    numHiddenLayers,
    numAttentionHeads,
    numKeyValueHeads,
    headDim,
    vocabSize,
    rmsNormEps: f.positive('rms_norm_eps', 1, 1e-6),
    ropeTheta,
    ropeScaling,
    tieWordEmbeddings: f.bool('tie_word_embeddings', false),
    maxPositionEmbeddings: f.int('max_position_embeddings', 1, LIMITS.maxPositionEmbeddings, DEFAULT_MAX_POSITIONS[architecture]),
    qkvBias: architecture === 'Qwen2ForCausalLM' || attentionBias,
    oProjBias: attentionBias,
    mlpBias: llama && f.bool('mlp_bias', false),
    ...slidingOf(f, architecture, numHiddenLayers),
    bosTokenId: f.intList('bos_token_id', 0, vocabSize - 1, 1)[0] ?? null,
    eosTokenIds: Object.freeze(f.intList('eos_token_id', 0, vocabSize - 1, 64)),
  };
  Object.freeze(config.layerTypes);
  const limit = options.maxModelBytes ?? DEFAULT_MAX_MODEL_BYTES;
  if (typeof limit !== 'number' || !(limit > 0)) {
    throw new LoRAError('E_CONFIG', `maxModelBytes must be a positive number of bytes, got ${describeValue(limit)}`);
  }
  const bytes = modelFloat32Bytes(config);
  if (bytes > limit) {
    throw new LoRAError(
      'E_CAPACITY',
      `${from} describes a ${architecture} of ${bytes} bytes as float32 (${(bytes / 2 ** 30).toFixed(2)} GiB); the limit is maxModelBytes = ${limit}`,
    );
  }
  return Object.freeze(config);
}
