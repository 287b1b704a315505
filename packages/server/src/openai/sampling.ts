import { describeValue } from '@lora/core';
import type { SamplingParams } from '@lora/llama';
import { badParam } from '../http/errors.js';
import type { Fields } from './fields.js';

/** What every generation request (completions and chat) asks besides its prompt. */
export interface GenerationOptions {
  readonly model: string;
  readonly sampling: SamplingParams;
  readonly stream: boolean;
  /** `stream_options.include_usage`: a last chunk with `usage` and no choices. */
  readonly includeUsage: boolean;
  /** vLLM's `return_token_ids`: `prompt_token_ids` and `token_ids` in the response. */
  readonly returnTokenIds: boolean;
  /**
   * `lora_scale` (an `extra_body` field; vLLM issue 52733): the adapter's strength for this
   * request, served in the shared batch. Default 1; 0 = the base model's output.
   */
  readonly loraScale: number;
  /**
   * `lora_mix` (an `extra_body` field; issue #19, vLLM RFC 51940): served adapter names and weights,
   * `[{ "name": "style", "weight": 0.7 }, { "name": "domain", "weight": 0.5 }]`, whose LoRA terms add
   * up for this request (with `model` set to the base model). Undefined when not given.
   */
  readonly loraMix: readonly { readonly name: string; readonly weight: number }[] | undefined;
}

/** More adapters than any runtime has slots for; the engine checks the runtime's own maxLoras. */
const MAX_MIX_TERMS = 64;

/** `lora_mix` read and checked: 1 to 64 `{ name, weight }` with distinct names and finite weights. */
function readLoraMix(f: Fields): GenerationOptions['loraMix'] {
  const raw = f.raw('lora_mix');
  if (raw === undefined || raw === null) return undefined;
  const shape = 'lora_mix must be a list of { "name": <served adapter>, "weight": <number> }';
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > MAX_MIX_TERMS)
    throw badParam('lora_mix', `${shape} with 1 to ${MAX_MIX_TERMS} entries, got ${describeValue(raw)}`);
  const seen = new Set<string>();
  return raw.map((term: unknown, k) => {
    const { name, weight } = (typeof term === 'object' && term !== null ? term : {}) as { name?: unknown; weight?: unknown };
    if (typeof name !== 'string' || typeof weight !== 'number' || !Number.isFinite(weight))
      throw badParam('lora_mix', `${shape}; entry ${k} is ${describeValue(term)}`);
    if (seen.has(name)) throw badParam('lora_mix', `lora_mix names ${describeValue(name)} twice; give it once with the summed weight`);
    seen.add(name);
    return { name, weight };
  });
}

const isZero = (v: unknown) => v === 0;
const isFalseOrZero = (v: unknown) => v === false || v === 0;
const isEmptyObject = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0;

/**
 * The sampling fields shared by /v1/completions and /v1/chat/completions, with OpenAI's defaults
 * (temperature 1, top_p 1) and vLLM's extra fields (`top_k`, `ignore_eos`, `stop_token_ids`,
 * `include_stop_str_in_output`, `return_token_ids`; vLLM `entrypoints/openai/protocol.py`
 * `CompletionRequest`). `maxTokens` is the value the endpoint settled on (its own default applied).
 */
export function readGenerationOptions(f: Fields, maxTokens: number | undefined): GenerationOptions {
  const model = f.requiredString('model');
  const n = f.integer('n', 1);
  if (n !== undefined && n !== 1) throw badParam('n', `n must be 1: this server returns one choice per request, got ${n}`);
  const stream = f.boolean('stream') ?? false;
  let includeUsage = false;
  const so = f.raw('stream_options');
  if (so !== undefined) {
    // OpenAI and vLLM (`validate_stream_options`) refuse stream_options without stream.
    if (!stream) throw badParam('stream_options', 'stream_options is only allowed when stream is true');
    if (typeof so !== 'object' || Array.isArray(so))
      throw badParam('stream_options', `stream_options must be an object, got ${describeValue(so)}`);
    const usage = (so as Record<string, unknown>).include_usage ?? false;
    if (typeof usage !== 'boolean')
      throw badParam('stream_options', `stream_options.include_usage must be a boolean, got ${describeValue(usage)}`);
    const continuous = (so as Record<string, unknown>).continuous_usage_stats ?? false;
    if (continuous !== false) {
      throw badParam('stream_options', 'stream_options.continuous_usage_stats is not supported by this server', 'unsupported_parameter');
    }
    includeUsage = usage;
  }
  const temperature = f.number('temperature', { min: 0 }) ?? 1;
  const topP = f.number('top_p', { min: 0, max: 1, minExclusive: true }) ?? 1;
  const topK = f.integer('top_k', -1) ?? 0;
  const seed = f.integer('seed');
  const stopRaw = f.raw('stop');
  let stop: string[] | undefined;
  if (typeof stopRaw === 'string') stop = [stopRaw];
  else if (Array.isArray(stopRaw) && stopRaw.every((s) => typeof s === 'string')) stop = stopRaw as string[];
  else if (stopRaw !== undefined) throw badParam('stop', `stop must be a string or a list of strings, got ${describeValue(stopRaw)}`);
  if (stop?.length === 0) stop = undefined;
  const stopTokenIds = f.raw('stop_token_ids');
  if (stopTokenIds !== undefined && !Array.isArray(stopTokenIds)) {
    throw badParam('stop_token_ids', `stop_token_ids must be a list of token ids, got ${describeValue(stopTokenIds)}`);
  }
  const ignoreEos = f.boolean('ignore_eos');
  const includeStopStrInOutput = f.boolean('include_stop_str_in_output');
  const returnTokenIds = f.boolean('return_token_ids') ?? false;
  const loraScale = f.number('lora_scale') ?? 1;
  const loraMix = readLoraMix(f);
  // Accepted at their neutral values only: penalties, logprobs, logit_bias, min_tokens and beam search change sampling in ways the engine does not implement.
  f.onlyOff('presence_penalty', isZero, 'only 0');
  f.onlyOff('frequency_penalty', isZero, 'only 0');
  f.onlyOff('repetition_penalty', (v) => v === 1, 'only 1');
  f.onlyOff('min_tokens', isZero, 'only 0');
  f.onlyOff('min_p', isZero, 'only 0');
  f.onlyOff('logit_bias', isEmptyObject, 'only {}');
  f.onlyOff('logprobs', isFalseOrZero, 'no log probabilities');
  f.onlyOff('top_logprobs', isZero, 'no log probabilities');
  f.onlyOff('prompt_logprobs', isZero, 'no log probabilities');
  f.onlyOff('use_beam_search', (v) => v === false, 'no beam search');
  return {
    model,
    stream,
    includeUsage,
    returnTokenIds,
    loraScale,
    loraMix,
    sampling: {
      temperature,
      topP,
      topK: Math.max(topK, 0),
      ...(seed !== undefined ? { seed } : {}),
      ...(maxTokens !== undefined ? { maxTokens } : {}),
      ...(stop !== undefined ? { stop } : {}),
      ...(stopTokenIds !== undefined ? { stopTokenIds: stopTokenIds as number[] } : {}),
      ...(ignoreEos !== undefined ? { ignoreEos } : {}),
      ...(includeStopStrInOutput !== undefined ? { includeStopStrInOutput } : {}),
    },
  };
}
