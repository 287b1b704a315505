import { describeValue, LoRAError } from '@lora/core';
import { seeded } from '../rng.js';

/**
 * Per-request sampling, with vLLM's `SamplingParams` meanings (`vllm/sampling_params.py`):
 * temperature 0 is greedy; `topK` ≤ 0 and `topP` 1 turn those filters off; a `seed` makes the
 * request's samples reproducible whatever batch it runs in (each request draws from its own
 * generator, never a shared one).
 */
export interface SamplingParams {
  /** 0 = greedy (the default here; OpenAI's endpoints default to 1). */
  readonly temperature?: number;
  /** Keep the smallest set of tokens whose probability reaches topP (0 < topP ≤ 1; 1 = off). */
  readonly topP?: number;
  /** Keep the topK most likely tokens (≤ 0 = off). */
  readonly topK?: number;
  /** Seed of this request's generator (32-bit); without one a random seed is drawn. */
  readonly seed?: number;
  /** Tokens to generate at most (default: up to the model's context length). */
  readonly maxTokens?: number;
  /** Strings that end the text (the text stops before them). Needs a tokenizer. */
  readonly stop?: readonly string[];
  /** Token ids that end the generation besides EOS (the token is kept in tokenIds). */
  readonly stopTokenIds?: readonly number[];
  /** Keep going past EOS (benchmarks with a fixed output length). */
  readonly ignoreEos?: boolean;
  /** Keep the stop string at the end of the text. */
  readonly includeStopStrInOutput?: boolean;
}

/**
 * A request's {@link SamplingParams} once {@link resolveSampling} has checked them: every default
 * filled in and the object frozen, so a request's sampler and stop checks never see a missing value.
 */
export interface ResolvedSampling {
  /** ≥ 0; 0 is greedy (argmax), the default. */
  readonly temperature: number;
  /** In (0, 1]; 1 (the default) turns the nucleus filter off. */
  readonly topP: number;
  /** An integer; ≤ 0 (the default 0) turns the top-k filter off. */
  readonly topK: number;
  /** The request generator's seed as an unsigned 32-bit integer (drawn at random when none was given). */
  readonly seed: number;
  /** Tokens to generate at most; undefined: until the context length. */
  readonly maxTokens: number | undefined;
  /** At most 16 non-empty strings of at most 256 characters (a frozen copy; default none). */
  readonly stop: readonly string[];
  /** Token ids in [0, vocabSize) that end the request besides EOS (default none). */
  readonly stopTokenIds: ReadonlySet<number>;
  /** Generate past EOS tokens (default false). */
  readonly ignoreEos: boolean;
  /** Keep a matched stop string at the end of the text (default false). */
  readonly includeStopStrInOutput: boolean;
}

const MAX_STOP_STRINGS = 16;
const MAX_STOP_LENGTH = 256;

const bad = (param: string, expected: string, value: unknown): never => {
  throw new LoRAError('E_CONFIG', `sampling parameter ${param} must be ${expected}, got ${describeValue(value)}`);
};

/** Validates a request's sampling parameters (E_CONFIG naming the parameter) and fills defaults. */
export function resolveSampling(params: SamplingParams | undefined, vocabSize: number): ResolvedSampling {
  const p = params ?? {};
  if (p === null || typeof p !== 'object') bad('object', 'an object of sampling parameters', p);
  const num = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
  const temperature = p.temperature ?? 0;
  if (!num(temperature) || temperature < 0) bad('temperature', 'a finite number ≥ 0', temperature);
  const topP = p.topP ?? 1;
  if (!num(topP) || topP <= 0 || topP > 1) bad('topP', 'a number in (0, 1]', topP);
  const topK = p.topK ?? 0;
  if (!Number.isSafeInteger(topK)) bad('topK', 'an integer (≤ 0 turns it off)', topK);
  const seed = p.seed ?? Math.floor(Math.random() * 2 ** 32);
  if (!Number.isSafeInteger(seed)) bad('seed', 'an integer', seed);
  const maxTokens = p.maxTokens;
  if (maxTokens !== undefined && (!Number.isSafeInteger(maxTokens) || maxTokens < 1)) bad('maxTokens', 'a positive integer', maxTokens);
  const stop = p.stop ?? [];
  if (
    !Array.isArray(stop) ||
    stop.length > MAX_STOP_STRINGS ||
    stop.some((s) => typeof s !== 'string' || s.length === 0 || s.length > MAX_STOP_LENGTH)
  ) {
    bad('stop', `a list of at most ${MAX_STOP_STRINGS} non-empty strings of at most ${MAX_STOP_LENGTH} characters`, stop);
  }
  const stopTokenIds = p.stopTokenIds ?? [];
  if (
    !Array.isArray(stopTokenIds) ||
    stopTokenIds.length > 1024 ||
    stopTokenIds.some((t) => !Number.isSafeInteger(t) || t < 0 || t >= vocabSize)
  ) {
    bad('stopTokenIds', `a list of token ids in [0, ${vocabSize})`, stopTokenIds);
  }
  for (const flag of ['ignoreEos', 'includeStopStrInOutput'] as const) {
    if (p[flag] !== undefined && typeof p[flag] !== 'boolean') bad(flag, 'a boolean', p[flag]);
  }
  return Object.freeze({
    temperature,
    topP,
    topK,
    seed: seed >>> 0,
    maxTokens,
    stop: Object.freeze([...stop]),
    stopTokenIds: new Set(stopTokenIds),
    ignoreEos: p.ignoreEos === true,
    includeStopStrInOutput: p.includeStopStrInOutput === true,
  });
}

/** The first index of the largest value (ties go to the lowest id, so greedy is deterministic). */
export function argmax(row: Float32Array): number {
  let best = 0;
  for (let v = 1; v < row.length; v++) if ((row[v] as number) > (row[best] as number)) best = v;
  return best;
}

/** A request's sampler: one generator per request, seeded once. */
export class Sampler {
  readonly #params: ResolvedSampling;
  readonly #next: () => number;

  constructor(params: ResolvedSampling) {
    this.#params = params;
    this.#next = seeded(params.seed);
  }

  /**
   * The next token from one logits row: argmax at temperature 0; otherwise softmax(logits / T)
   * restricted to the top-k tokens and then to the top-p nucleus (vLLM applies top-k before
   * top-p), renormalised, and sampled by inverse CDF with one draw of this request's generator.
   */
  sample(row: Float32Array): number {
    const { temperature, topK, topP } = this.#params;
    if (temperature === 0) return argmax(row);
    const V = row.length;
    const k = topK > 0 ? Math.min(topK, V) : V;
    let candidates: number[];
    if (k < V || topP < 1) {
      // Sorted by logit, descending; ties by id so the order never depends on the sort's stability.
      candidates = Array.from({ length: V }, (_, i) => i).sort((a, b) => (row[b] as number) - (row[a] as number) || a - b);
      candidates.length = k;
    } else candidates = Array.from({ length: V }, (_, i) => i);
    let max = Number.NEGATIVE_INFINITY;
    for (const i of candidates) if ((row[i] as number) > max) max = row[i] as number;
    const weights = candidates.map((i) => Math.exp(((row[i] as number) - max) / temperature));
    let total = weights.reduce((a, b) => a + b, 0);
    if (topP < 1) {
      let mass = 0;
      let keep = 0;
      while (keep < weights.length && mass < topP * total) mass += weights[keep++] as number;
      candidates.length = Math.max(1, keep);
      weights.length = candidates.length;
      total = weights.reduce((a, b) => a + b, 0);
    }
    let u = this.#next() * total;
    for (let j = 0; j < candidates.length; j++) {
      u -= weights[j] as number;
      if (u < 0) return candidates[j] as number;
    }
    return candidates[candidates.length - 1] as number;
  }
}
