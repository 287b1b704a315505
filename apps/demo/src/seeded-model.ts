import type { LoRARuntime } from '@lora/core';
import { buildCheckpoint, type CausalLM, loadModel } from '@lora/llama';
import { type DemoPreset, presetSpec } from './presets.js';

/**
 * A preset as a seeded Hugging Face checkpoint (config.json + model.safetensors) built in memory and
 * loaded the way a downloaded one is: the demo runs the real loading path with nothing downloaded.
 * Returns the model and the weights as stored, which the merged-weight check builds its references from.
 */
export async function seededModel(
  preset: DemoPreset,
  runtime: LoRARuntime,
): Promise<{ model: CausalLM; weights: Map<string, Float32Array> }> {
  const { files, weights } = buildCheckpoint(presetSpec(preset));
  const { model } = await loadModel(files, { runtime });
  return { model, weights };
}
