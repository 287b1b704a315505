import { describeValue, LoRAError } from '@lora/core';
import { checkFileName } from './sources/names.js';

/** transformers' names for a checkpoint's weights (`SAFE_WEIGHTS_NAME`, `SAFE_WEIGHTS_INDEX_NAME`). */
export const SAFE_WEIGHTS_NAME = 'model.safetensors';
export const SAFE_WEIGHTS_INDEX_NAME = 'model.safetensors.index.json';

/** A sharded checkpoint's index: which shard holds each tensor, shards in order of first use. */
export interface CheckpointIndex {
  readonly shards: readonly string[];
  /** Tensor name → shard file name. */
  readonly weightMap: ReadonlyMap<string, string>;
}

/**
 * Parses `model.safetensors.index.json` (`{ "metadata": { "total_size": … }, "weight_map": { tensor:
 * shard } }`, as `save_pretrained` writes it). Every shard must be a plain `.safetensors` file name
 * next to the index: an index is untrusted input and must not point the loader at `../` or `/etc`.
 */
export function parseCheckpointIndex(bytes: Uint8Array, from: string): CheckpointIndex {
  const fail = (message: string): never => {
    throw new LoRAError('E_FORMAT', `${from}: ${message}`);
  };
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    fail(`not valid UTF-8 JSON (${(err as Error).message.slice(0, 200)})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) fail(`must hold a JSON object, got ${describeValue(json)}`);
  const { weight_map: map, metadata } = json as Record<string, unknown>;
  if (metadata !== undefined && metadata !== null) {
    if (typeof metadata !== 'object' || Array.isArray(metadata)) fail(`metadata must be an object, got ${describeValue(metadata)}`);
    const size = (metadata as Record<string, unknown>).total_size;
    if (size !== undefined && !(typeof size === 'number' && Number.isSafeInteger(size) && size >= 0)) {
      fail(`metadata.total_size must be a non-negative integer, got ${describeValue(size)}`);
    }
  }
  if (map === null || typeof map !== 'object' || Array.isArray(map))
    fail(`weight_map must be an object of tensor name → shard file, got ${describeValue(map)}`);
  const weightMap = new Map<string, string>();
  const shards = new Set<string>();
  for (const [tensor, shard] of Object.entries(map as Record<string, unknown>)) {
    const file = checkFileName(shard, `${from}: weight_map[${JSON.stringify(tensor.slice(0, 120))}]`);
    if (!file.endsWith('.safetensors'))
      fail(`weight_map[${JSON.stringify(tensor.slice(0, 120))}] is ${describeValue(file)}; shards must be .safetensors files`);
    shards.add(file);
    weightMap.set(tensor, file);
  }
  if (weightMap.size === 0) fail('weight_map is empty');
  return { shards: [...shards], weightMap };
}
