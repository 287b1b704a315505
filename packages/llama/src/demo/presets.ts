import type { CheckpointSpec } from '../fixtures.js';

/**
 * The embedded models of the demo, the server's offline default, the benchmarks and the playground:
 * seeded checkpoints built in memory (nothing to download): three Llama sizes, and two shaped like
 * the models a browser runs — every width of SmolLM2-135M and of Qwen2.5-0.5B (their config.json),
 * with fewer layers, so LoRA costs what it costs there (padding and fixed costs dominate at hidden
 * 576 and 896).
 */
export interface DemoPreset extends CheckpointSpec {
  readonly name: string;
}

const llama = { architecture: 'LlamaForCausalLM', ropeTheta: 10000, rmsNormEps: 1e-5, maxPositionEmbeddings: 1024 } as const;

export const DEMO_PRESETS = {
  tiny: {
    name: 'tiny',
    ...llama,
    numHiddenLayers: 2,
    hiddenSize: 64,
    numAttentionHeads: 4,
    numKeyValueHeads: 1,
    intermediateSize: 172,
    vocabSize: 512,
  },
  default: {
    name: 'default',
    ...llama,
    numHiddenLayers: 4,
    hiddenSize: 512,
    numAttentionHeads: 8,
    numKeyValueHeads: 2,
    intermediateSize: 1376,
    vocabSize: 4096,
  },
  small: {
    name: 'small',
    ...llama,
    numHiddenLayers: 4,
    hiddenSize: 2048,
    numAttentionHeads: 16,
    numKeyValueHeads: 4,
    intermediateSize: 5504,
    vocabSize: 4096,
  },
  /** HuggingFaceTB/SmolLM2-135M: hidden 576, 9 / 3 heads of 64, intermediate 1536, vocab 49152, tied (30 layers there). */
  smollm2: {
    name: 'smollm2',
    architecture: 'LlamaForCausalLM',
    numHiddenLayers: 4,
    hiddenSize: 576,
    numAttentionHeads: 9,
    numKeyValueHeads: 3,
    intermediateSize: 1536,
    vocabSize: 49152,
    tieWordEmbeddings: true,
    ropeTheta: 100000,
    rmsNormEps: 1e-5,
    maxPositionEmbeddings: 2048,
  },
  /** Qwen/Qwen2.5-0.5B: hidden 896, 14 / 2 heads of 64, intermediate 4864, vocab 151936, q/k/v bias, tied (24 layers there). */
  'qwen2.5': {
    name: 'qwen2.5',
    architecture: 'Qwen2ForCausalLM',
    numHiddenLayers: 2,
    hiddenSize: 896,
    numAttentionHeads: 14,
    numKeyValueHeads: 2,
    intermediateSize: 4864,
    vocabSize: 151936,
    tieWordEmbeddings: true,
    ropeTheta: 1000000,
    rmsNormEps: 1e-6,
    maxPositionEmbeddings: 2048,
  },
} as const satisfies Record<string, DemoPreset>;

export type DemoPresetName = keyof typeof DEMO_PRESETS;
