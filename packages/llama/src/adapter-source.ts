import { describeValue, isLoRAError, LoRAError, loadPeftAdapter, type PeftAdapter } from '@lora/core';
import { readText } from './read-json.js';
import type { FileSource, LoadProgress } from './source.js';

/** Options of {@link loadPeftAdapterFrom}. */
export interface LoadAdapterOptions {
  /** Largest adapter_model.safetensors to read (default 2 GiB). */
  readonly maxBytes?: number;
  /** Called as the bytes of adapter_config.json and adapter_model.safetensors arrive. */
  readonly onProgress?: (event: LoadProgress) => void;
}

const DEFAULT_MAX_WEIGHTS_BYTES = 2 * 1024 ** 3;
const MAX_CONFIG_BYTES = 1024 * 1024;

/**
 * A PEFT LoRA adapter from any FileSource (a Hub repository, a directory, a URL, files in memory):
 * `adapter_config.json` + `adapter_model.safetensors`, through @lora/core's loadPeftAdapter.
 * A pickled `adapter_model.bin` is refused (unpickling runs code). Errors name the source and file.
 */
export async function loadPeftAdapterFrom(source: FileSource, id: string, options: LoadAdapterOptions = {}): Promise<PeftAdapter> {
  if (source === null || typeof source !== 'object' || typeof source.read !== 'function') {
    throw new LoRAError('E_CONFIG', `loadPeftAdapterFrom expects a FileSource, got ${describeValue(source)}`);
  }
  if (typeof id !== 'string' || id.length === 0)
    throw new LoRAError('E_CONFIG', `adapter id must be a non-empty string, got ${describeValue(id)}`);
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_WEIGHTS_BYTES;
  if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0) {
    throw new LoRAError('E_CONFIG', `maxBytes must be a positive integer, got ${describeValue(maxBytes)}`);
  }
  const { description } = source;
  const config = await readText(source, 'adapter_config.json', MAX_CONFIG_BYTES, options.onProgress);
  if (config === undefined) {
    throw new LoRAError(
      'E_NOT_FOUND',
      `${description}: adapter_config.json not found; expected a PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors)`,
    );
  }
  const weights = await source.read('adapter_model.safetensors', { maxBytes, onProgress: options.onProgress });
  if (weights === undefined) {
    if (await hasFile(source, 'adapter_model.bin')) {
      throw new LoRAError(
        'E_UNSUPPORTED',
        `${description} has adapter_model.bin (a pickle, which cannot be read safely) and no adapter_model.safetensors; convert it, e.g. in Python: PeftModel.from_pretrained(base, path).save_pretrained(out, safe_serialization=True)`,
      );
    }
    throw new LoRAError('E_NOT_FOUND', `${description}: adapter_model.safetensors not found; expected it next to adapter_config.json`);
  }
  try {
    return loadPeftAdapter({ id, config, safetensors: weights });
  } catch (err) {
    // core names the file but not where it came from.
    if (isLoRAError(err)) throw new LoRAError(err.code, `${description}: ${err.message.replace(/^\[E_[A-Z_]+\] /, '')}`, { cause: err });
    throw err;
  }
}

/**
 * Whether a file exists, without reading it: a read bounded to 0 bytes gives undefined for no
 * file, and for a file with content the source refuses it as too large (E_FORMAT) before
 * downloading or reading any of it (the FileSource contract).
 */
async function hasFile(source: FileSource, name: string): Promise<boolean> {
  try {
    return (await source.read(name, { maxBytes: 0 })) !== undefined;
  } catch (err) {
    if (isLoRAError(err, 'E_FORMAT')) return true;
    throw err;
  }
}
