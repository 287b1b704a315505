import { describeValue, LoRAError } from '@lora/core';
import { isNode, nodeBuiltins } from '@lora/core/backend';
import type { FileSource } from '../source.js';
import { dirSource } from './dir.js';
import { type HubSourceOptions, hubSource } from './hub.js';
import { urlSource } from './url.js';

/**
 * What a user types for a model or an adapter on a command line, as a FileSource, the way
 * `vllm serve` reads its model argument: an http(s) URL; an existing local directory; otherwise a
 * Hugging Face Hub repository id (`org/name`, with `@revision` to pin a branch, tag or commit).
 * Anything else is E_NOT_FOUND naming what was looked for.
 */
export async function locateSource(spec: string, options: HubSourceOptions = {}): Promise<FileSource> {
  if (typeof spec !== 'string' || spec.length === 0) {
    throw new LoRAError('E_CONFIG', `expected a directory, a Hub repository id or an http(s) URL, got ${describeValue(spec)}`);
  }
  if (/^https?:\/\//i.test(spec)) return urlSource(spec);
  if (isNode()) {
    const { fs } = await nodeBuiltins('fs');
    const info = await fs.stat(spec).catch(() => undefined);
    if (info?.isDirectory()) return dirSource(spec);
    if (info !== undefined) throw new LoRAError('E_CONFIG', `${spec} is a file; expected a directory with the model's or adapter's files`);
  }
  const at = spec.lastIndexOf('@');
  const [repo, revision] = at > 0 ? [spec.slice(0, at), spec.slice(at + 1)] : [spec, options.revision];
  if (!/^[\w.-]+\/[\w.-]+$/.test(repo)) {
    throw new LoRAError('E_NOT_FOUND', `${spec} is neither a local directory nor a Hugging Face Hub repository id (org/name[@revision])`);
  }
  return hubSource(repo, { ...options, ...(revision ? { revision } : {}) });
}
