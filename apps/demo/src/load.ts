import type { PeftAdapter } from '@lora/core';
import { loadPeftAdapterFrom, locateSource } from '@lora/llama';

/** `--adapters NAME=DIR|ID,...`: each from a directory or the Hub, under its name. */
export async function loadAdapters(specs: readonly { name: string; spec: string }[]): Promise<PeftAdapter[]> {
  const adapters: PeftAdapter[] = [];
  for (const { name, spec } of specs) adapters.push(await loadPeftAdapterFrom(await locateSource(spec), name));
  return adapters;
}
