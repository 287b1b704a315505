import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { loadPeftAdapterFromDir, type PeftAdapter, writePeftAdapterDir } from '@lora/core';
import { adapterFiles, DEMO_ADAPTERS, type ModelConfig } from '@lora/llama';

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

/**
 * Writes the demo adapters as PEFT directories (adapter_config.json + adapter_model.safetensors)
 * under `cacheDir` unless they are there already, then loads them the way a user's adapters load.
 */
export async function demoAdapters(config: ModelConfig, cacheDir: string): Promise<{ adapters: PeftAdapter[]; created: boolean }> {
  let created = false;
  const adapters: PeftAdapter[] = [];
  for (const [i, spec] of DEMO_ADAPTERS.entries()) {
    const dir = join(cacheDir, spec.id);
    if (!(await exists(join(dir, 'adapter_model.safetensors')))) {
      await writePeftAdapterDir(dir, adapterFiles(config, spec, 1000 + i));
      created = true;
    }
    adapters.push(await loadPeftAdapterFromDir(dir, spec.id));
  }
  return { adapters, created };
}
