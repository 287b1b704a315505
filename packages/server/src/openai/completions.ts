import { describeValue } from '@lora/core';
import { badParam } from '../http/errors.js';
import { Fields } from './fields.js';
import { type GenerationOptions, readGenerationOptions } from './sampling.js';

/** OpenAI's default `max_tokens` for /v1/completions (vLLM `CompletionRequest.max_tokens` = 16 too). */
export const COMPLETIONS_DEFAULT_MAX_TOKENS = 16;

export interface CompletionRequest extends GenerationOptions {
  /** Text, or token ids (OpenAI accepts `prompt: number[]`). */
  readonly prompt: string | number[];
}

const isTokenList = (v: unknown): v is number[] => Array.isArray(v) && v.length > 0 && v.every((t) => typeof t === 'number');

/**
 * A /v1/completions body. One prompt per request: a string, a list of token ids, or a list of
 * one of those (OpenAI's batch form with a single entry); several prompts are refused with 400
 * rather than answered as several choices.
 */
export function parseCompletionRequest(body: Record<string, unknown>): CompletionRequest {
  const f = new Fields(body);
  let prompt = f.raw('prompt');
  if (Array.isArray(prompt) && prompt.length === 1 && (typeof prompt[0] === 'string' || isTokenList(prompt[0]))) prompt = prompt[0];
  if (prompt === undefined) throw badParam('prompt', 'prompt is required', 'missing_required_parameter');
  if (Array.isArray(prompt) && prompt.length > 1 && prompt.every((p) => typeof p === 'string' || Array.isArray(p))) {
    throw badParam('prompt', `this server takes one prompt per request, got ${prompt.length}`);
  }
  if (typeof prompt === 'string') {
    if (prompt.length === 0) throw badParam('prompt', 'prompt is empty');
  } else if (!isTokenList(prompt)) {
    throw badParam('prompt', `prompt must be a string or a non-empty list of token ids, got ${describeValue(prompt)}`);
  }
  f.onlyOff('echo', (v) => v === false, 'echo is not implemented');
  f.onlyOff('suffix', (v) => v === '', 'no suffix');
  f.onlyOff('best_of', (v) => v === 1, 'only 1');
  const maxTokens = f.integer('max_tokens', 1) ?? COMPLETIONS_DEFAULT_MAX_TOKENS;
  return { ...readGenerationOptions(f, maxTokens), prompt: prompt as string | number[] };
}
