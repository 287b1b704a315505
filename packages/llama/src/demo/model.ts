import { describeValue, LoRAError, type LoRARuntime, loadPeftAdapter, type PeftAdapter } from '@lora/core';
import { loadModel } from '../checkpoint.js';
import type { ModelConfig } from '../config.js';
import { adapterFiles, DEMO_ADAPTERS } from '../fixture-adapters.js';
import { buildCheckpoint, type Checkpoint } from '../fixtures.js';
import type { CausalLM } from '../model.js';
import { DEMO_PRESETS, type DemoPreset } from './presets.js';

/** A preset by name (or a preset itself); an unknown name lists the known ones. */
export function demoPreset(preset: string | DemoPreset): DemoPreset {
  if (typeof preset !== 'string') return preset;
  const p = (DEMO_PRESETS as Record<string, DemoPreset>)[preset];
  if (p === undefined || !Object.hasOwn(DEMO_PRESETS, preset)) {
    throw new LoRAError('E_CONFIG', `unknown preset ${describeValue(preset)}; expected one of ${Object.keys(DEMO_PRESETS).join(', ')}`);
  }
  return p;
}

/** A demo preset built and loaded by {@link loadDemoModel}. */
export interface DemoModel {
  /** The preset it was built from (looked up when given by name). */
  readonly preset: DemoPreset;
  /** The loaded model, on the runtime passed to {@link loadDemoModel}. */
  readonly model: CausalLM;
  /** The config as the loader parsed it from the generated config.json (for {@link demoAdapters}, engines and references). */
  readonly config: ModelConfig;
  /** The checkpoint's files (config.json, model.safetensors) and weights as stored: references are built from these. */
  readonly checkpoint: Checkpoint;
}

/**
 * A preset as a seeded Hugging Face checkpoint (config.json + model.safetensors) built in memory
 * and loaded the way a downloaded one is: the real loading path, with nothing downloaded.
 */
export async function loadDemoModel(preset: string | DemoPreset, runtime: LoRARuntime): Promise<DemoModel> {
  const p = demoPreset(preset);
  const checkpoint = buildCheckpoint(p);
  const { model, config } = await loadModel(checkpoint.files, { runtime });
  return { preset: p, model, config, checkpoint };
}

/** The demo adapters' PEFT files for a model (what `save_pretrained` writes), by adapter id. */
export function demoAdapterFiles(config: ModelConfig): Map<string, ReturnType<typeof adapterFiles>> {
  return new Map(DEMO_ADAPTERS.map((spec, i) => [spec.id, adapterFiles(config, spec, 1000 + i)]));
}

/** The demo adapters built in memory and loaded through the PEFT path (a browser has no cache folder). */
export function demoAdapters(config: ModelConfig): PeftAdapter[] {
  return [...demoAdapterFiles(config)].map(([id, files]) => loadPeftAdapter({ id, ...files }));
}
