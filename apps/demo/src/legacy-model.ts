import type { LoRARuntime } from '@lora/core';
import { CausalLM, type Chunk, greedy, Sequence as LlamaSequence, seededWeights as llamaSeededWeights, type WeightMap } from '@lora/llama';
import { type DemoModelConfig, type DemoPreset, demoModelConfig } from './presets.js';

/**
 * The demo's former model API over `@lora/llama`, kept so that apps/bench and apps/playground (which
 * import it from `@lora/demo/serving`) build unchanged until they move to `@lora/llama` themselves.
 */

export type { Chunk };
/** Base weights by Hugging Face tensor name. */
export type BaseWeights = WeightMap;

/** A preset's seeded weights: the same values the demo's in-memory checkpoint holds. */
export function seededWeights(p: DemoPreset): Map<string, Float32Array> {
  return llamaSeededWeights(demoModelConfig(p));
}

/** `new Sequence(layers)`: the layer count is no longer needed. */
export class Sequence extends LlamaSequence {
  /** The argument is ignored: a sequence learns its layer count on its first forward. */
  constructor(_layers?: number) {
    super();
  }
}

/** A `CausalLM` built from a preset, with the old `step()` (greedy token and margin per chunk). */
export class LlamaModel extends CausalLM {
  declare readonly config: DemoModelConfig;

  constructor(runtime: LoRARuntime, preset: DemoPreset, weights: WeightMap) {
    super(runtime, demoModelConfig(preset), weights);
  }

  async step(chunks: readonly Chunk[]): Promise<{ next: number[]; margins: number[] }> {
    const { tokens, margins } = greedy(await this.forward(chunks), this.config.vocabSize);
    return { next: tokens, margins };
  }
}
