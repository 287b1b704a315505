import { realpath } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import { loadPeftAdapter, type PeftAdapter, readLocalFile } from '@lora/core';

/** The two files of a PEFT adapter directory, in the order they are reported missing. */
export const PEFT_FILES = ['adapter_config.json', 'adapter_model.safetensors'] as const;
const MAX_CONFIG_BYTES = 4 * 1024 ** 2;
/** Largest adapter_model.safetensors the server reads unless told otherwise (as core's `loadPeftAdapterFromDir`). */
export const DEFAULT_MAX_ADAPTER_BYTES = 2 * 1024 ** 3;

/** One adapter directory to read: plain data, so that a worker thread can be sent it. */
export interface AdapterDirJob {
  /** The runtime id the adapter gets. */
  readonly id: string;
  /** The directory, already resolved (`realpath`). */
  readonly dir: string;
  /** When set, each file must resolve — every symlink followed — inside this real path (`--lora-root`). */
  readonly root?: string;
  /** Largest adapter_model.safetensors read. */
  readonly maxBytes: number;
  /** Where the adapter came from, for error messages (the `lora_path` or `--adapters` path as given). */
  readonly source: string;
}

/** What reading a directory gave: the adapter, or why there is none (errors in the files are thrown as LoRAErrors). */
export type AdapterDirResult =
  | { readonly adapter: PeftAdapter }
  /** A file resolves outside `root` (through a symlink). */
  | { readonly outside: true }
  /** A file is not there (or went away while it was read). */
  | { readonly missing: 'adapter_config.json' | 'adapter_model.safetensors' };

/** Is `path` (already resolved, no symlinks) `root` or below it? */
export function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

/** `realpath`, or undefined when the path does not exist. */
export async function real(path: string): Promise<string | undefined> {
  try {
    return await realpath(path);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

/**
 * Reads and checks one PEFT adapter directory (core's `readLocalFile`: regular files only, size
 * bounded; `loadPeftAdapter`: every tensor parsed, converted to float32 and checked). Every file
 * operation is started at once and the two files are read in parallel: on the thread that runs
 * engine steps each operation waits for the current step, so doing them one after the other would
 * add a step per operation to a cold adapter's time to first token. Runs the same on the main
 * thread and in the adapter-load worker (`adapter-loader.ts`).
 */
export async function readAdapterDir(job: AdapterDirJob): Promise<AdapterDirResult> {
  const paths = await Promise.all(PEFT_FILES.map((file) => real(join(job.dir, file))));
  if (job.root !== undefined && paths.some((p) => p !== undefined && !inside(job.root as string, p))) return { outside: true };
  const [configPath, weightsPath] = paths;
  if (configPath === undefined) return { missing: PEFT_FILES[0] };
  if (weightsPath === undefined) return { missing: PEFT_FILES[1] };
  const [config, safetensors] = await Promise.all([
    readLocalFile(configPath, { maxBytes: MAX_CONFIG_BYTES, what: PEFT_FILES[0] }),
    readLocalFile(weightsPath, { maxBytes: job.maxBytes, what: PEFT_FILES[1] }),
  ]);
  if (config === undefined) return { missing: PEFT_FILES[0] };
  if (safetensors === undefined) return { missing: PEFT_FILES[1] };
  return { adapter: loadPeftAdapter({ id: job.id, config: new TextDecoder().decode(config), safetensors, source: job.source }) };
}
