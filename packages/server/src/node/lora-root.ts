import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { describeValue, LoRAError } from '@lora/core';
import { ApiError } from '../http/errors.js';
import type { AdapterSource } from '../models.js';
import type { LoraPathResolver } from '../routes/lora.js';
import { DEFAULT_MAX_ADAPTER_BYTES, inside, readAdapterDir, real } from './adapter-dir.js';
import type { AdapterLoader } from './adapter-loader.js';

/** Reads on the calling thread: the loader {@link loraRootResolver} uses when none is given. */
const MAIN_THREAD: Pick<AdapterLoader, 'load'> = { load: readAdapterDir };

/**
 * `lora_path` resolver for /v1/load_lora_adapter that reads only under `root` (`--lora-root`):
 * a relative path is taken from the root; the directory and each file read from it
 * (adapter_config.json, adapter_model.safetensors) must resolve — `realpath`, every symlink
 * followed — to a place inside the root's own real path, so neither `..` nor a symlink can make
 * the server read another file; a path outside is 403 (saying nothing about whether it exists),
 * a missing adapter inside is 404. The resolved files are read (regular files only, size-bounded,
 * core's `readLocalFile`) each time the adapter is loaded — on the request and again after the
 * host cache evicted it, like vLLM, which keeps the path and reloads from it — through `loader`
 * (`createAdapterLoader`: off the main thread; default: on it).
 */
export async function loraRootResolver(
  root: string,
  options: { maxBytes?: number; loader?: Pick<AdapterLoader, 'load'> } = {},
): Promise<LoraPathResolver> {
  const rootReal = await real(root);
  if (rootReal === undefined || !(await stat(rootReal)).isDirectory()) {
    throw new LoRAError('E_NOT_FOUND', `--lora-root ${JSON.stringify(root)} is not a directory`);
  }
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_ADAPTER_BYTES;
  const outside = (path: string) =>
    new ApiError(403, `lora_path ${describeValue(path)} is outside the directory this server loads adapters from (--lora-root)`, {
      param: 'lora_path',
      code: 'lora_path_forbidden',
    });
  const loader = options.loader ?? MAIN_THREAD;
  return async (requested) => {
    if (typeof requested !== 'string' || requested.length === 0 || requested.includes('\0')) {
      throw new ApiError(400, `lora_path must be a path, got ${describeValue(requested)}`, { param: 'lora_path' });
    }
    const candidate = resolve(rootReal, requested);
    // Refuse before touching the filesystem when the path is outside even as written.
    if (!inside(rootReal, candidate)) throw outside(requested);
    const dir = await real(candidate);
    if (dir === undefined) {
      throw new ApiError(404, `no adapter at lora_path ${describeValue(requested)}`, { param: 'lora_path', code: 'not_found' });
    }
    if (!inside(rootReal, dir)) throw outside(requested);
    const source: AdapterSource = {
      root: requested,
      async load(id) {
        const result = await loader.load({ id, dir, root: rootReal, maxBytes, source: requested });
        if ('adapter' in result) return result.adapter;
        if ('outside' in result) throw outside(requested);
        throw new ApiError(404, `no ${result.missing} in lora_path ${describeValue(requested)}: expected a PEFT adapter directory`, {
          param: 'lora_path',
          code: 'not_found',
        });
      },
    };
    return source;
  };
}
