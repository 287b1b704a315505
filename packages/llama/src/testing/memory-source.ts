import { LoRAError } from '@lora/core';
import type { FileSource } from '../source.js';

/**
 * A FileSource over files held in memory, for tests: it keeps the FileSource contract (undefined
 * for a missing file, E_FORMAT over maxBytes, a progress event) and counts reads per file.
 */
export function memorySource(
  files: Readonly<Record<string, string | Uint8Array>>,
  description = 'memory',
): FileSource & {
  readonly reads: Map<string, number>;
} {
  const encoder = new TextEncoder();
  const reads = new Map<string, number>();
  return {
    description,
    reads,
    async read(name, { maxBytes, onProgress }) {
      reads.set(name, (reads.get(name) ?? 0) + 1);
      if (!Object.hasOwn(files, name)) return undefined;
      const file = files[name] as string | Uint8Array;
      const bytes = typeof file === 'string' ? encoder.encode(file) : file;
      if (bytes.length > maxBytes) {
        throw new LoRAError('E_FORMAT', `${description}: ${name} is ${bytes.length} bytes; at most ${maxBytes} are allowed`);
      }
      onProgress?.({ file: name, loaded: bytes.length, total: bytes.length });
      return bytes;
    },
  };
}
