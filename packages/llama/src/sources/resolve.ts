import { describeValue, LoRAError } from '@lora/core';
import type { FileSource } from '../source.js';
import { dirSource } from './dir.js';
import { type FileMap, memorySource } from './memory.js';
import { urlSource } from './url.js';

/**
 * Where a checkpoint comes from: a `FileSource`, an http(s) base URL, a local directory path
 * (Node), or the files themselves (a map of file name → bytes, e.g. in a browser).
 */
export type ModelSource = FileSource | string | FileMap;

const isFileSource = (s: unknown): s is FileSource =>
  typeof (s as FileSource | null)?.read === 'function' && typeof (s as FileSource).description === 'string';

/** The `FileSource` for any `ModelSource`. */
export function toFileSource(source: ModelSource): FileSource {
  if (typeof source === 'string') {
    if (source.length === 0) throw new LoRAError('E_CONFIG', 'the model source is an empty string; expected a directory or an http(s) URL');
    return /^https?:\/\//i.test(source) ? urlSource(source) : dirSource(source);
  }
  if (isFileSource(source)) return source;
  if (source !== null && typeof source === 'object') return memorySource(source as FileMap);
  throw new LoRAError(
    'E_CONFIG',
    `expected a model source (a directory path, an http(s) URL, a FileSource or a map of file name → bytes), got ${describeValue(source)}`,
  );
}
