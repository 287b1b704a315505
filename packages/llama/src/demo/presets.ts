import type { CheckpointSpec } from '../fixtures.js';

/**
 * The embedded models of the demo, the server's offline default, the benchmarks and the playground:
 * seeded Llama checkpoints built in memory (nothing to download), in three sizes.
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
} as const satisfies Record<string, DemoPreset>;

export type DemoPresetName = keyof typeof DEMO_PRESETS;
