import type { CheckpointSpec } from '../fixtures.js';

/**
 * The embedded models of the demo, the server's offline default, the benchmarks and the playground:
 * seeded checkpoints built in memory (nothing to download): three Llama sizes, and two shaped like
 * the models a browser runs — every width of SmolLM2-135M and of Qwen2.5-0.5B (their config.json),
 * with fewer layers, so LoRA costs what it costs there (padding and fixed costs dominate at hidden
 * 576 and 896).
 */
export interface DemoPreset extends CheckpointSpec {
  /** Its key in {@link DEMO_PRESETS}, shown in messages (`embedded "tiny"`). */
  readonly name: string;
}

const llama = {
  /** `LlamaForCausalLM`, for the three Llama presets. */
  architecture: 'LlamaForCausalLM',
  /** 10000, Llama-2's rotary base. */
  ropeTheta: 10000,
  /** 1e-5, Llama-2's. */
  rmsNormEps: 1e-5,
  /** 1024 tokens of context per request, prompt and generated together (the engine's maxModelLen). */
  maxPositionEmbeddings: 1024,
} as const;

/**
 * The embedded models by name (the demo's and the server's `--preset`); see {@link DemoPreset}.
 * The Llama presets keep Llama-2-7B's proportions (FFN 2.6875 × hidden) at small sizes.
 */
export const DEMO_PRESETS = {
  /** Llama, 2 layers, hidden 64, vocab 512 (≈ 0.15 M parameters): tests and quick checks. */
  tiny: {
    /** Its key. */
    name: 'tiny',
    ...llama,
    /** 2 decoder layers, so that one layer's output (LoRA included) feeds another. */
    numHiddenLayers: 2,
    /** 64: 4 heads of 16. */
    hiddenSize: 64,
    /** 4 query heads of 16 dimensions. */
    numAttentionHeads: 4,
    /** 1: multi-query attention, all 4 query heads share one key/value head. */
    numKeyValueHeads: 1,
    /** 172 = 2.6875 × hidden, Llama-2-7B's ratio (11008 / 4096). */
    intermediateSize: 172,
    /** 512 tokens: prompt token ids must be below it. */
    vocabSize: 512,
  },
  /** Llama, 4 layers, hidden 512, vocab 4096 (≈ 15 M parameters): the demo's model when no preset is named. */
  default: {
    /** Its key; the demo's `--preset` default. */
    name: 'default',
    ...llama,
    /** 4 decoder layers (Llama-2-7B has 32). */
    numHiddenLayers: 4,
    /** 512: 8 heads of 64. */
    hiddenSize: 512,
    /** 8 query heads of 64 dimensions. */
    numAttentionHeads: 8,
    /** 2: grouped-query attention, 4 query heads per key/value head. */
    numKeyValueHeads: 2,
    /** 1376 = 2.6875 × hidden, Llama-2-7B's ratio (11008 / 4096). */
    intermediateSize: 1376,
    /** 4096 tokens (Llama-2 has 32000). */
    vocabSize: 4096,
  },
  /** Llama, 4 layers, hidden 2048, vocab 4096 (≈ 194 M parameters): the widest Llama preset. */
  small: {
    /** Its key. */
    name: 'small',
    ...llama,
    /** 4 decoder layers, as in `default`: only the widths grow. */
    numHiddenLayers: 4,
    /** 2048: 16 heads of 128, Llama-2-7B's head size. */
    hiddenSize: 2048,
    /** 16 query heads of 128 dimensions. */
    numAttentionHeads: 16,
    /** 4: grouped-query attention, 4 query heads per key/value head. */
    numKeyValueHeads: 4,
    /** 5504 = 2.6875 × hidden: half of Llama-2-7B's 11008. */
    intermediateSize: 5504,
    /** 4096 tokens, as in `default`. */
    vocabSize: 4096,
  },
  /** HuggingFaceTB/SmolLM2-135M: hidden 576, 9 / 3 heads of 64, intermediate 1536, vocab 49152, tied (30 layers there). */
  smollm2: {
    /** Its key. */
    name: 'smollm2',
    /** `LlamaForCausalLM`, as in SmolLM2's config.json. */
    architecture: 'LlamaForCausalLM',
    /** 4 of SmolLM2-135M's 30 layers: its widths at a fraction of its depth. */
    numHiddenLayers: 4,
    /** 576, SmolLM2-135M's: 9 heads of 64. */
    hiddenSize: 576,
    /** 9 query heads of 64 dimensions. */
    numAttentionHeads: 9,
    /** 3: grouped-query attention, 3 query heads per key/value head. */
    numKeyValueHeads: 3,
    /** 1536, SmolLM2-135M's. */
    intermediateSize: 1536,
    /** 49152, SmolLM2's: the tied LM head (49152 × 576) is by far the largest weight matrix. */
    vocabSize: 49152,
    /** The LM head is the embedding matrix (no `lm_head.weight`), as in SmolLM2. */
    tieWordEmbeddings: true,
    /** 100000, SmolLM2's rotary base. */
    ropeTheta: 100000,
    /** 1e-5, SmolLM2's. */
    rmsNormEps: 1e-5,
    /** 2048 tokens of context per request, prompt and generated together (the engine's maxModelLen). */
    maxPositionEmbeddings: 2048,
  },
  /** Qwen/Qwen2.5-0.5B: hidden 896, 14 / 2 heads of 64, intermediate 4864, vocab 151936, q/k/v bias, tied (24 layers there). */
  'qwen2.5': {
    /** Its key. */
    name: 'qwen2.5',
    /** `Qwen2ForCausalLM`: biases on q_proj, k_proj and v_proj. */
    architecture: 'Qwen2ForCausalLM',
    /** 2 of Qwen2.5-0.5B's 24 layers: its widths at a fraction of its depth. */
    numHiddenLayers: 2,
    /** 896, Qwen2.5-0.5B's: 14 heads of 64. */
    hiddenSize: 896,
    /** 14 query heads of 64 dimensions. */
    numAttentionHeads: 14,
    /** 2: grouped-query attention, 7 query heads per key/value head. */
    numKeyValueHeads: 2,
    /** 4864, Qwen2.5-0.5B's. */
    intermediateSize: 4864,
    /** 151936, Qwen2.5's: the tied LM head (151936 × 896) holds most of the parameters. */
    vocabSize: 151936,
    /** The LM head is the embedding matrix (no `lm_head.weight`), as in Qwen2.5-0.5B. */
    tieWordEmbeddings: true,
    /** 1000000, Qwen2.5's rotary base. */
    ropeTheta: 1000000,
    /** 1e-6, Qwen2.5's. */
    rmsNormEps: 1e-6,
    /** 2048 tokens of context per request, prompt and generated together (the engine's maxModelLen). */
    maxPositionEmbeddings: 2048,
  },
} as const satisfies Record<string, DemoPreset>;

/** The name of one of the {@link DEMO_PRESETS}. */
export type DemoPresetName = keyof typeof DEMO_PRESETS;
