import { access, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadPeftAdapterFromDir, type PeftAdapter, writePeftAdapterDir } from '@lora/core';
import { buildCheckpoint, checkpointConfigJson, type ModelConfig, parseModelConfig } from '@lora/llama';
import { type DemoPreset, demoAdapterFiles } from '@lora/llama/demo';

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

/** The config a preset's checkpoint has, without building its weights. */
export function presetConfig(preset: DemoPreset): ModelConfig {
  return parseModelConfig(checkpointConfigJson(preset), `preset "${preset.name}"`);
}

/**
 * The embedded model as a Hugging Face checkpoint directory (`dir/model`: config.json +
 * model.safetensors) and the demo adapters as PEFT directories (`dir/<id>`), written unless they are
 * there already: what `--model` and `--adapters` then load like downloaded ones.
 */
export async function writeEmbedded(
  preset: DemoPreset,
  dir: string,
): Promise<{ modelDir: string; adapterDirs: Map<string, string>; created: boolean }> {
  let created = false;
  const modelDir = join(dir, 'model');
  if (!(await exists(join(modelDir, 'model.safetensors')))) {
    await mkdir(modelDir, { recursive: true });
    const { files } = buildCheckpoint(preset);
    for (const [name, bytes] of Object.entries(files)) await writeFile(join(modelDir, name), bytes);
    created = true;
  }
  const adapterDirs = new Map<string, string>();
  for (const [id, files] of demoAdapterFiles(presetConfig(preset))) {
    const adapterDir = join(dir, id);
    if (!(await exists(join(adapterDir, 'adapter_model.safetensors')))) {
      await writePeftAdapterDir(adapterDir, files);
      created = true;
    }
    adapterDirs.set(id, adapterDir);
  }
  return { modelDir, adapterDirs, created };
}

/** The demo adapters, written under `dir` on first use and loaded from there the way a user's adapters load. */
export async function cachedDemoAdapters(preset: DemoPreset, dir: string): Promise<{ adapters: PeftAdapter[]; created: boolean }> {
  const { adapterDirs, created } = await writeEmbedded(preset, dir);
  const adapters: PeftAdapter[] = [];
  for (const [id, adapterDir] of adapterDirs) adapters.push(await loadPeftAdapterFromDir(adapterDir, id));
  return { adapters, created };
}
