import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LoRAError, type PeftAdapter } from '@lora/core';
import { type FileSource, loadPeftAdapterFrom, locateSource } from '@lora/llama';
import type { AdapterSource } from '../models.js';
import { DEFAULT_MAX_ADAPTER_BYTES, PEFT_FILES, real } from './adapter-dir.js';
import type { AdapterLoader } from './adapter-loader.js';

/** A `--adapters name=path` adapter: loaded once at start, and the source that loads it again after the host cache evicted it. */
export interface PathAdapter {
  readonly adapter: PeftAdapter;
  readonly source: AdapterSource;
}

/** The source, with every file it returns kept in `files`. */
function recording(source: FileSource, files: Map<string, Uint8Array>): FileSource {
  return {
    description: source.description,
    async read(name, options) {
      const bytes = await source.read(name, options);
      if (bytes !== undefined) files.set(name, bytes);
      return bytes;
    },
  };
}

/**
 * Loads `path` (a PEFT directory, a Hub repository id or a URL, through @lora/llama's
 * `locateSource`) as adapter `name`, and gives the source it is reloaded from when the host cache
 * evicted it — the tiers of issue #22: the host cache ← a local store ← the source. A directory
 * is its own local store; an adapter that came over the network (Hub, URL) has its two files
 * written under `storeDir` (`<storeDir>/<n>`) the first time, so a reload reads local disk and never
 * downloads again (vLLM likewise keeps the local path it downloaded a Hub adapter to). Reloads go
 * through `loader`, off the main thread. The adapter loaded at start is handed to the first
 * `load` and then let go: the host cache, not this source, decides what stays in memory.
 */
export async function loadPathAdapter(
  name: string,
  path: string,
  options: { loader: Pick<AdapterLoader, 'load'>; storeDir: () => Promise<string>; maxBytes?: number },
): Promise<PathAdapter> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_ADAPTER_BYTES;
  const isDir = (await stat(path).catch(() => undefined))?.isDirectory() === true;
  const files = new Map<string, Uint8Array>();
  const located = await locateSource(path);
  const adapter = await loadPeftAdapterFrom(isDir ? located : recording(located, files), name, { maxBytes });
  let dir: string;
  if (isDir) {
    dir = (await real(path)) ?? path;
  } else {
    dir = await options.storeDir();
    await mkdir(dir, { recursive: true });
    await Promise.all(PEFT_FILES.map((f) => writeFile(join(dir, f), files.get(f) as Uint8Array)));
  }
  let first: PeftAdapter | undefined = adapter;
  const source: AdapterSource = {
    root: path,
    async load(id) {
      if (first !== undefined) {
        const loaded = first;
        first = undefined;
        return loaded;
      }
      const result = await options.loader.load({ id, dir, maxBytes, source: path });
      if ('adapter' in result) return result.adapter;
      // Only a directory that changed under the server gets here (`root` is not set, so never 'outside').
      throw new LoRAError(
        'E_NOT_FOUND',
        `${path}: ${'missing' in result ? result.missing : 'a file'} is gone; the adapter cannot be loaded again`,
      );
    },
  };
  return { adapter, source };
}
