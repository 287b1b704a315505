import { openLocalFile, readLocalFile } from '@lora/core';
import type { FileSource, RandomAccessFile, ReadOptions } from '../source.js';
import { checkFileName } from './names.js';

/**
 * Node: a `FileSource` over a local directory. Every read goes through core's `readLocalFile` or
 * `openLocalFile` (regular files only, at most `maxBytes`, never past the size stat reported).
 */
export function dirSource(dir: string): FileSource {
  const base = dir.replace(/[/\\]+$/, '') || '/';
  return {
    description: base,
    async read(name: string, options: ReadOptions): Promise<Uint8Array | undefined> {
      checkFileName(name, base);
      const bytes = await readLocalFile(`${base}/${name}`, { maxBytes: options.maxBytes, what: name });
      if (bytes !== undefined) options.onProgress?.({ file: name, loaded: bytes.byteLength, total: bytes.byteLength });
      return bytes;
    },
    async open(name: string, options: ReadOptions): Promise<RandomAccessFile | undefined> {
      checkFileName(name, base);
      return openLocalFile(`${base}/${name}`, { maxBytes: options.maxBytes, what: name });
    },
  };
}
