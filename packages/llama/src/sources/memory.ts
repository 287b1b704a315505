import { describeValue, LoRAError } from '@lora/core';
import type { FileSource, ReadOptions } from '../source.js';
import { checkFileName, checkSize } from './names.js';

/** Files already in memory: a browser that fetched them, or a generated checkpoint. */
export type FileMap = Readonly<Record<string, Uint8Array | ArrayBuffer>> | ReadonlyMap<string, Uint8Array | ArrayBuffer>;

/**
 * A `FileSource` over a map of file name → bytes. The bytes are returned as they are (no copy);
 * `maxBytes` is still enforced so that callers behave the same on every source.
 */
export function memorySource(files: FileMap, description = 'in-memory files'): FileSource {
  if (files === null || typeof files !== 'object') {
    throw new LoRAError('E_CONFIG', `memorySource expects a map of file name → Uint8Array or ArrayBuffer, got ${describeValue(files)}`);
  }
  const lookup = (name: string): unknown =>
    files instanceof Map ? files.get(name) : Object.hasOwn(files, name) ? (files as Record<string, unknown>)[name] : undefined;
  return {
    description,
    async read(name: string, options: ReadOptions): Promise<Uint8Array | undefined> {
      checkFileName(name, description);
      const value = lookup(name);
      if (value === undefined) return undefined;
      const bytes = value instanceof Uint8Array ? value : value instanceof ArrayBuffer ? new Uint8Array(value) : undefined;
      if (bytes === undefined) {
        throw new LoRAError('E_CONFIG', `${description}: ${name} must be a Uint8Array or an ArrayBuffer, got ${describeValue(value)}`);
      }
      checkSize(bytes.byteLength, options.maxBytes, `${description}: ${name}`);
      options.onProgress?.({ file: name, loaded: bytes.byteLength, total: bytes.byteLength });
      return bytes;
    },
  };
}
