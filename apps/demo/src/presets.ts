import { type CheckpointSpec, checkpointConfigJson, type ModelConfig, parseModelConfig } from '@lora/llama';

/** The demo's model sizes, in its own short names (also what the benchmarks and the playground pass around). */
export interface DemoPreset {
  name: string;
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  vocab: number;
  ropeTheta: number;
  rmsEps: number;
  maxPositions: number;
}

/** A preset with the normalised `@lora/llama` config of the checkpoint built for it. */
export type DemoModelConfig = ModelConfig & DemoPreset;

/** The Llama checkpoint spec of a preset: untied embeddings, seeded F32 weights, one file. */
export function presetSpec(p: DemoPreset): CheckpointSpec {
  return {
    architecture: 'LlamaForCausalLM',
    hiddenSize: p.hidden,
    intermediateSize: p.intermediate,
    numHiddenLayers: p.layers,
    numAttentionHeads: p.heads,
    numKeyValueHeads: p.kvHeads,
    vocabSize: p.vocab,
    ropeTheta: p.ropeTheta,
    rmsNormEps: p.rmsEps,
    maxPositionEmbeddings: p.maxPositions,
  };
}

/**
 * The config a preset's checkpoint has (parsed from its config.json, as loading would), with the
 * preset's own fields alongside. The short names are the source of truth: `{ ...preset, maxPositions }`
 * gives a consistent config again.
 */
export function demoModelConfig(p: DemoPreset): DemoModelConfig {
  const parsed = parseModelConfig(checkpointConfigJson(presetSpec(p)), `preset "${p.name}"`);
  const { name, layers, hidden, heads, kvHeads, intermediate, vocab, ropeTheta, rmsEps, maxPositions } = p;
  return Object.freeze({ ...parsed, name, layers, hidden, heads, kvHeads, intermediate, vocab, ropeTheta, rmsEps, maxPositions });
}

const base = { ropeTheta: 10000, rmsEps: 1e-5, maxPositions: 1024 };

export const PRESETS: Record<string, DemoModelConfig> = {
  tiny: demoModelConfig({ name: 'tiny', layers: 2, hidden: 64, heads: 4, kvHeads: 1, intermediate: 172, vocab: 512, ...base }),
  default: demoModelConfig({ name: 'default', layers: 4, hidden: 512, heads: 8, kvHeads: 2, intermediate: 1376, vocab: 4096, ...base }),
  small: demoModelConfig({ name: 'small', layers: 4, hidden: 2048, heads: 16, kvHeads: 4, intermediate: 5504, vocab: 4096, ...base }),
};

export const headDim = (p: DemoPreset): number => p.hidden / p.heads;
