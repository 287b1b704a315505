import { loadPeftAdapter, type PeftAdapter } from '@lora/core';
import { adapterFiles, DEMO_ADAPTERS, type ModelConfig } from '@lora/llama';

/** The demo adapters built in memory and loaded through the PEFT path (the browser has no cache folder). */
export function demoAdaptersInMemory(config: ModelConfig): PeftAdapter[] {
  return DEMO_ADAPTERS.map((spec, i) => loadPeftAdapter({ id: spec.id, ...adapterFiles(config, spec, 1000 + i) }));
}
