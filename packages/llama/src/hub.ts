import type { PeftAdapter } from '@lora/core';
import { type LoadAdapterOptions, loadPeftAdapterFrom } from './adapter-source.js';
import { type HubSourceOptions, hubSource } from './sources/hub.js';

/**
 * Options of {@link loadPeftAdapterFromHub}: where and how to download (the Hub source's options),
 * the adapter's size limit, and its id.
 */
export interface LoadPeftAdapterFromHubOptions extends HubSourceOptions, Omit<LoadAdapterOptions, 'onProgress'> {
  /** The adapter's id in the runtime. Default: the repository id, with `@revision` unless it is `main`. */
  readonly id?: string;
}

/**
 * A PEFT LoRA adapter from a Hugging Face Hub repository (adapter_config.json +
 * adapter_model.safetensors), downloaded through the Hugging Face cache (see hubSource).
 */
export async function loadPeftAdapterFromHub(repo: string, options: LoadPeftAdapterFromHubOptions = {}): Promise<PeftAdapter> {
  const source = hubSource(repo, options);
  const id = options.id ?? (source.revision === 'main' ? repo : `${repo}@${source.revision}`);
  return loadPeftAdapterFrom(source, id, { maxBytes: options.maxBytes });
}
