import { bf16ToFloat, floatToBf16, floatToHalf, halfToFloat, type SerializableDType, serializeSafetensors } from '@lora/core';
import { nodeBuiltins } from '@lora/core/backend';
import { SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME } from './checkpoint-index.js';
import { type ModelConfig, parseModelConfig } from './config.js';
import { checkpointTensors, elements } from './modules.js';
import { seeded, uniform } from './rng.js';

/**
 * Tiny seeded checkpoints in the exact Hugging Face layout (config.json with transformers' field
 * names, model.safetensors or shards + model.safetensors.index.json), for tests, the demo, the
 * benchmarks and the conformance suite: real loading code paths, nothing downloaded.
 */

/** The shape fields as the parsed config names them; the rest are the config.json options to write. */
export interface CheckpointSpec
  extends Pick<
    ModelConfig,
    'architecture' | 'hiddenSize' | 'intermediateSize' | 'numHiddenLayers' | 'numAttentionHeads' | 'numKeyValueHeads' | 'vocabSize'
  > {
  /** Written as `head_dim` when given (it may differ from hidden / heads). */
  readonly headDim?: number;
  /** `tie_word_embeddings` (default false): when true the checkpoint has no `lm_head.weight`. */
  readonly tieWordEmbeddings?: boolean;
  /** `rope_theta` (default 10000). */
  readonly ropeTheta?: number;
  /** Written as `rope_scaling: { rope_type: "llama3", … }` (Llama and Qwen2; default none: plain rotary). */
  readonly llama3RopeScaling?: {
    /** `factor`: the divisor of the low frequencies. */
    factor: number;
    /** `low_freq_factor`; must be less than `highFreqFactor` or parsing fails. */
    lowFreqFactor: number;
    /** `high_freq_factor`. */
    highFreqFactor: number;
    /** `original_max_position_embeddings`, in tokens. */
    originalMaxPositionEmbeddings: number;
  };
  /** Mistral: `sliding_window`. Qwen2: `use_sliding_window: true` + `sliding_window`. */
  readonly slidingWindow?: number;
  /** Qwen2: `max_window_layers` (layers from this index on have the window). */
  readonly maxWindowLayers?: number;
  /** Llama: `attention_bias` (default false), biases on q_proj, k_proj, v_proj and o_proj. */
  readonly attentionBias?: boolean;
  /** Llama: `mlp_bias` (default false), biases on gate_proj, up_proj and down_proj. */
  readonly mlpBias?: boolean;
  /** `max_position_embeddings` (default 512). */
  readonly maxPositionEmbeddings?: number;
  /** `rms_norm_eps` (default 1e-6). */
  readonly rmsNormEps?: number;
  /** Storage dtype of the weights (default F32). */
  readonly dtype?: SerializableDType;
  /** Split the weights into this many shards with an index (default 1: one model.safetensors). */
  readonly shards?: number;
  /** Seed of the weights (default 7). */
  readonly seed?: number;
}

/** A checkpoint built by {@link buildCheckpoint}, with the values a loader must reproduce. */
export interface Checkpoint {
  /** The written config.json as {@link parseModelConfig} reads it. */
  readonly config: ModelConfig;
  /** File name → bytes, as a model directory (or a Hub repository) holds them. */
  readonly files: Record<string, Uint8Array>;
  /** The weights as stored, by tensor name (rounded to `dtype`): what a correct loader yields. */
  readonly weights: Map<string, Float32Array>;
}

const TORCH_DTYPE: Record<SerializableDType, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

/** config.json as transformers' `save_pretrained` writes it for the spec's architecture. */
export function checkpointConfigJson(spec: CheckpointSpec): Record<string, unknown> {
  const common = {
    architectures: [spec.architecture],
    attention_dropout: 0.0,
    bos_token_id: 1,
    eos_token_id: spec.architecture === 'Qwen2ForCausalLM' ? [2, 3] : 2,
    hidden_act: 'silu',
    hidden_size: spec.hiddenSize,
    initializer_range: 0.02,
    intermediate_size: spec.intermediateSize,
    max_position_embeddings: spec.maxPositionEmbeddings ?? 512,
    num_attention_heads: spec.numAttentionHeads,
    num_hidden_layers: spec.numHiddenLayers,
    num_key_value_heads: spec.numKeyValueHeads,
    rms_norm_eps: spec.rmsNormEps ?? 1e-6,
    rope_theta: spec.ropeTheta ?? 10000.0,
    tie_word_embeddings: spec.tieWordEmbeddings ?? false,
    torch_dtype: TORCH_DTYPE[spec.dtype ?? 'F32'],
    transformers_version: '4.46.0',
    use_cache: true,
    vocab_size: spec.vocabSize,
    ...(spec.headDim !== undefined ? { head_dim: spec.headDim } : {}),
  };
  const rs = spec.llama3RopeScaling;
  const ropeScaling = rs
    ? {
        factor: rs.factor,
        low_freq_factor: rs.lowFreqFactor,
        high_freq_factor: rs.highFreqFactor,
        original_max_position_embeddings: rs.originalMaxPositionEmbeddings,
        rope_type: 'llama3',
      }
    : null;
  switch (spec.architecture) {
    case 'LlamaForCausalLM':
      return {
        ...common,
        model_type: 'llama',
        attention_bias: spec.attentionBias ?? false,
        mlp_bias: spec.mlpBias ?? false,
        pretraining_tp: 1,
        rope_scaling: ropeScaling,
      };
    case 'MistralForCausalLM':
      return { ...common, model_type: 'mistral', sliding_window: spec.slidingWindow ?? null };
    case 'Qwen2ForCausalLM':
      return {
        ...common,
        model_type: 'qwen2',
        rope_scaling: ropeScaling,
        use_sliding_window: spec.slidingWindow !== undefined,
        sliding_window: spec.slidingWindow ?? 4096,
        max_window_layers: spec.maxWindowLayers ?? spec.numHiddenLayers,
      };
  }
}

/**
 * Seeded weights for a config, by tensor name. Scales keep activations O(1) through the stack:
 * linear weights uniform with standard deviation 1/√in, the embedding with 1, biases 0.1, norm
 * weights 1 ± 0.1 (so that a wrong norm weight shows).
 */
export function seededWeights(config: ModelConfig, seed = 7): Map<string, Float32Array> {
  const next = seeded(seed);
  const weights = new Map<string, Float32Array>();
  const sqrt3 = Math.sqrt(3); // uniform on [-a, a] has standard deviation a/√3
  for (const t of checkpointTensors(config)) {
    const n = elements(t.shape);
    let data: Float32Array;
    if (t.name.endsWith('norm.weight')) data = uniform(next, n, 0.1).map((v) => 1 + v);
    else if (t.name.endsWith('.bias')) data = uniform(next, n, 0.1 * sqrt3);
    else if (t.name === 'model.embed_tokens.weight') data = uniform(next, n, sqrt3);
    else data = uniform(next, n, sqrt3 / Math.sqrt(t.shape[1] as number));
    weights.set(t.name, data);
  }
  return weights;
}

const roundTo = (dtype: SerializableDType) =>
  dtype === 'BF16'
    ? (v: number) => bf16ToFloat(floatToBf16(v))
    : dtype === 'F16'
      ? (v: number) => halfToFloat(floatToHalf(v))
      : (v: number) => v;

/** Builds a checkpoint in memory: config.json and the weights, in one file or in `shards` shards. */
export function buildCheckpoint(spec: CheckpointSpec): Checkpoint {
  const json = checkpointConfigJson(spec);
  const config = parseModelConfig(json, `checkpoint spec (${spec.architecture})`);
  const dtype = spec.dtype ?? 'F32';
  const weights = seededWeights(config, spec.seed);
  if (dtype !== 'F32') for (const [name, data] of weights) weights.set(name, data.map(roundTo(dtype)));
  const files: Record<string, Uint8Array> = { 'config.json': new TextEncoder().encode(`${JSON.stringify(json, null, 2)}\n`) };
  const metadata = { format: 'pt' };
  const shards = spec.shards ?? 1;
  const tensors = checkpointTensors(config).map((t) => ({ ...t, data: weights.get(t.name) as Float32Array }));
  if (shards <= 1) {
    files[SAFE_WEIGHTS_NAME] = serializeSafetensors(Object.fromEntries(tensors.map((t) => [t.name, t])), metadata, dtype);
    return { config, files, weights };
  }
  // transformers shards the state dict in order, starting a new file when the next tensor would
  // overflow the size limit; here the limit is 1/shards of the total.
  const width = dtype === 'F32' ? 4 : 2;
  const total = tensors.reduce((n, t) => n + t.data.length * width, 0);
  const groups: (typeof tensors)[] = [[]];
  let size = 0;
  for (const t of tensors) {
    const bytes = t.data.length * width;
    if (size > 0 && size + bytes > total / shards && groups.length < shards) {
      groups.push([]);
      size = 0;
    }
    (groups.at(-1) as typeof tensors).push(t);
    size += bytes;
  }
  const name = (i: number) => `model-${String(i + 1).padStart(5, '0')}-of-${String(groups.length).padStart(5, '0')}.safetensors`;
  const weightMap: Record<string, string> = {};
  groups.forEach((group, i) => {
    files[name(i)] = serializeSafetensors(Object.fromEntries(group.map((t) => [t.name, t])), metadata, dtype);
    for (const t of group) weightMap[t.name] = name(i);
  });
  files[SAFE_WEIGHTS_INDEX_NAME] = new TextEncoder().encode(
    `${JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2)}\n`,
  );
  return { config, files, weights };
}

/** Node: writes a checkpoint's files into `dir` (created if needed). */
export async function writeCheckpoint(dir: string, files: Readonly<Record<string, Uint8Array>>): Promise<void> {
  const { fs, path } = await nodeBuiltins('fs', 'path');
  await fs.mkdir(dir, { recursive: true });
  for (const [name, bytes] of Object.entries(files)) await fs.writeFile(path.join(dir, name), bytes);
}

/**
 * The shape shared by the presets: 2 layers, 4 query heads over 2 key/value heads (grouped-query
 * attention), head_dim 16. Small enough that a test builds and runs the model in milliseconds.
 */
const tiny = {
  /** 64: with 4 heads, head_dim 16. */
  hiddenSize: 64,
  /** 96: the MLP width; as it differs from hiddenSize, gate_proj/up_proj (`[96, 64]`) and down_proj (`[64, 96]`) have distinct shapes. */
  intermediateSize: 96,
  /** 2 decoder layers, so that qwen2-sliding-window can have one full and one windowed layer. */
  numHiddenLayers: 2,
  /** 4 query heads. */
  numAttentionHeads: 4,
  /** 2 key/value heads: each serves two query heads. */
  numKeyValueHeads: 2,
  /** 128 token ids. */
  vocabSize: 128,
} as const;

/** One preset per feature the loader and the model must get right. */
export const CHECKPOINT_PRESETS = {
  /** Llama with `tie_word_embeddings`: the LM head is the embedding, no `lm_head.weight`. */
  'llama-tied': {
    /** Llama. */
    architecture: 'LlamaForCausalLM',
    ...tiny,
    /** The feature under test. */
    tieWordEmbeddings: true,
  },
  /** Llama with its own `lm_head.weight`, and multi-query attention (one key/value head for all 4 query heads). */
  'llama-untied': {
    /** Llama. */
    architecture: 'LlamaForCausalLM',
    ...tiny,
    /** 1: every query head shares the single key/value head. */
    numKeyValueHeads: 1,
  },
  /** Llama with `attention_bias` and `mlp_bias`: biases on all seven projections. */
  'llama-bias': {
    /** Llama (the only family where both flags count). */
    architecture: 'LlamaForCausalLM',
    ...tiny,
    /** Biases on q_proj, k_proj, v_proj and o_proj. */
    attentionBias: true,
    /** Biases on gate_proj, up_proj and down_proj. */
    mlpBias: true,
  },
  /** Qwen2: q/k/v biases without an o_proj bias, tied embeddings and rope_theta 10⁶, as the small Qwen2 releases have. */
  'qwen2-bias': {
    /** Qwen2, whose q_proj, k_proj and v_proj always have biases. */
    architecture: 'Qwen2ForCausalLM',
    ...tiny,
    /** As the small Qwen2 releases are. */
    tieWordEmbeddings: true,
    /** 1000000, the Qwen2 releases' rotary base. */
    ropeTheta: 1000000,
  },
  /** Llama 3.1-style `rope_scaling` (`rope_type` "llama3"). */
  'llama3-rope': {
    /** Llama. */
    architecture: 'LlamaForCausalLM',
    ...tiny,
    // head_dim 16: wavelengths 2π·10⁴^(i/8) put one frequency under 16, two between 16 and 64 and
    // five over 64, so each branch of the llama3 formula is exercised.
    /** Bands at wavelengths 64 / 4 = 16 and 64 / 1 = 64. */
    llama3RopeScaling: {
      /** Low frequencies divided by 8, as in Llama 3.1. */
      factor: 8,
      /** Wavelengths above 64 are fully scaled. */
      lowFreqFactor: 1,
      /** Wavelengths below 16 are kept. */
      highFreqFactor: 4,
      /** 64 tokens. */
      originalMaxPositionEmbeddings: 64,
    },
  },
  /** Weights split over three safetensors files plus `model.safetensors.index.json`. */
  'llama-sharded': {
    /** Llama. */
    architecture: 'LlamaForCausalLM',
    ...tiny,
    /** Three shards. */
    shards: 3,
  },
  /** Weights stored as bfloat16, so that the loader must widen them to float32. */
  'llama-bf16': {
    /** Llama. */
    architecture: 'LlamaForCausalLM',
    ...tiny,
    /** bfloat16 storage (`torch_dtype` "bfloat16"). */
    dtype: 'BF16',
  },
  /** Mistral with a 4-token sliding window on every layer. */
  'mistral-sliding-window': {
    /** Mistral, whose `sliding_window` applies to all layers. */
    architecture: 'MistralForCausalLM',
    ...tiny,
    /** 4 positions, the query's own included. */
    slidingWindow: 4,
  },
  /** Qwen2 with a 3-token window on layer 1 only (layer 0 attends fully), stored as float16. */
  'qwen2-sliding-window': {
    /** Qwen2, where `use_sliding_window` and `max_window_layers` decide which layers have the window. */
    architecture: 'Qwen2ForCausalLM',
    ...tiny,
    /** 3 positions, the query's own included. */
    slidingWindow: 3,
    /** Layers from index 1 on have the window. */
    maxWindowLayers: 1,
    /** float16 storage (`torch_dtype` "float16"). */
    dtype: 'F16',
  },
  /** An explicit `head_dim` (16) that differs from hidden_size / heads (48 / 4 = 12). */
  'llama-head-dim': {
    /** Llama. */
    architecture: 'LlamaForCausalLM',
    ...tiny,
    /** 48, so that hidden / heads (12) is not the head_dim. */
    hiddenSize: 48,
    /** 16: q_proj is then [64, 48] rather than square. */
    headDim: 16,
  },
} as const satisfies Record<string, CheckpointSpec>;

/** The name of one of the {@link CHECKPOINT_PRESETS}. */
export type CheckpointPreset = keyof typeof CHECKPOINT_PRESETS;
