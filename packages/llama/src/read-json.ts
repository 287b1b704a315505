import { describeValue, LoRAError } from '@lora/core';
import type { FileSource, LoadProgress } from './source.js';

/** Reads `name` from a source as UTF-8 text; undefined when the source has no such file. */
export async function readText(
  source: FileSource,
  name: string,
  maxBytes: number,
  onProgress?: (event: LoadProgress) => void,
): Promise<string | undefined> {
  const bytes = await source.read(name, { maxBytes, onProgress });
  if (bytes === undefined) return undefined;
  try {
    // fatal: a tokenizer file that is not UTF-8 is broken, not something to decode with U+FFFD.
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (err) {
    throw new LoRAError('E_FORMAT', `${source.description}: ${name} is not UTF-8 text`, { cause: err });
  }
}

/**
 * Reads and parses a JSON file that must hold an object (every Hugging Face config file does);
 * undefined when the source has no such file.
 */
export async function readJsonObject(
  source: FileSource,
  name: string,
  maxBytes: number,
  onProgress?: (event: LoadProgress) => void,
): Promise<Record<string, unknown> | undefined> {
  const text = await readText(source, name, maxBytes, onProgress);
  if (text === undefined) return undefined;
  return parseJsonObject(text, `${source.description}: ${name}`);
}

/** Parses JSON text that must be an object; `what` names the file in the error. */
export function parseJsonObject(text: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new LoRAError('E_FORMAT', `${what} is not valid JSON: ${(err as Error).message.slice(0, 200)}`, { cause: err });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new LoRAError('E_FORMAT', `${what} must hold a JSON object, got ${describeValue(value)}`);
  }
  return value as Record<string, unknown>;
}
