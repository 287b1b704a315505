import { realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { describeValue, LoRAError, loadPeftAdapter, readLocalFile } from '@lora/core';
import { ApiError } from '../http/errors.js';
import type { AdapterSource } from '../models.js';
import type { LoraPathResolver } from '../routes/lora.js';

const DEFAULT_MAX_ADAPTER_BYTES = 2 * 1024 ** 3;
const MAX_CONFIG_BYTES = 4 * 1024 ** 2;
const FILES = ['adapter_config.json', 'adapter_model.safetensors'] as const;

/** Is `path` (already resolved, no symlinks) `root` or below it? */
function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

async function real(path: string): Promise<string | undefined> {
  try {
    return await realpath(path);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

/**
 * `lora_path` resolver for /v1/load_lora_adapter that reads only under `root` (`--lora-root`):
 * a relative path is taken from the root; the directory and each file read from it
 * (adapter_config.json, adapter_model.safetensors) must resolve — `realpath`, every symlink
 * followed — to a place inside the root's own real path, so neither `..` nor a symlink can make
 * the server read another file; a path outside is 403 (saying nothing about whether it exists),
 * a missing adapter inside is 404. The resolved files are read (regular files only, size-bounded,
 * core's `readLocalFile`) each time the adapter is loaded — on the request and again after the
 * host cache evicted it, like vLLM, which keeps the path and reloads from it.
 */
export async function loraRootResolver(root: string, options: { maxBytes?: number } = {}): Promise<LoraPathResolver> {
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
  const resolveFile = async (dir: string, file: string, requested: string) => {
    const path = await real(join(dir, file));
    if (path === undefined) return undefined;
    if (!inside(rootReal, path)) throw outside(requested);
    return path;
  };
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
        const [configPath, weightsPath] = await Promise.all(FILES.map((f) => resolveFile(dir, f, requested)));
        if (configPath === undefined || weightsPath === undefined) {
          const missing = configPath === undefined ? FILES[0] : FILES[1];
          throw new ApiError(404, `no ${missing} in lora_path ${describeValue(requested)}: expected a PEFT adapter directory`, {
            param: 'lora_path',
            code: 'not_found',
          });
        }
        // Both files at once: each file operation waits for the engine's current step, so reading them
        // one after the other would add a step per operation to a cold adapter's time to first token.
        const [config, safetensors] = await Promise.all([
          readLocalFile(configPath, { maxBytes: MAX_CONFIG_BYTES, what: FILES[0] }),
          readLocalFile(weightsPath, { maxBytes, what: FILES[1] }),
        ]);
        if (config === undefined || safetensors === undefined) {
          throw new ApiError(404, `the adapter at lora_path ${describeValue(requested)} went away while it was read`, {
            param: 'lora_path',
          });
        }
        return loadPeftAdapter({ id, config: new TextDecoder().decode(config), safetensors, source: requested });
      },
    };
    return source;
  };
}
