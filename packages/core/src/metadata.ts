import { bucketTokens } from './bucketing.js';
import { CONFIG_LIMITS } from './config.js';
import { describeValue, LoRAError } from './errors.js';
import { snapshotArray } from './validate.js';

/** A run of tokens (in `sortedTokenIndices` order) that all use one adapter slot. */
export interface LoRASegment {
  /** The adapter slot, in `[0, maxLoras)`, that every token of the segment uses. */
  readonly slot: number;
  /** Offset into `sortedTokenIndices`. */
  readonly start: number;
  /** Tokens in the segment, at least 1 (a slot no token uses has no segment). */
  readonly length: number;
}

/**
 * Everything a kernel needs to know about which token uses which slot, computed once per batch on
 * the host. Typed arrays are shared with kernels and must be treated as read-only.
 */
export interface LoRAMapping {
  /** Increases with every `updateMetadata`: backends key their uploads and caches on it. */
  readonly version: number;
  /** Rows of the batch: tokens for the token mapping, sequences being sampled for `sampler`; at most `maxNumTokens`. */
  readonly numTokens: number;
  /** Slot per token, `-1` for no adapter (a copy of what the caller passed). */
  readonly tokenLoraIndices: Int32Array;
  /** Tokens that have an adapter, grouped by slot (ascending), in original order within a slot. */
  readonly sortedTokenIndices: Int32Array;
  /** Tokens that have an adapter (= `sortedTokenIndices.length`). */
  readonly numLoRATokens: number;
  /** One segment per active slot, in `sortedTokenIndices` order (SGMV segments). */
  readonly segments: readonly LoRASegment[];
  /** Distinct slots used by the batch, ascending. */
  readonly activeSlots: readonly number[];
  /** No token has an adapter: shrink gives zeros and expand returns y unchanged without a kernel. */
  readonly noLoRA: boolean;
  /** Every token uses the same slot: kernels can drop index lookups and masks. */
  readonly singleLoRA: boolean;
  /** `numTokens` rounded up to its static-shape bucket. */
  readonly tokenBucket: number;
}

/** Token mapping plus the sampler mapping (one row per sequence being sampled) used by logits. */
export interface LoRAMetadata extends LoRAMapping {
  /**
   * The mapping of lm_head's rows (`samplerLoraIndices`, one per sequence being sampled), read by
   * `addLoRALogits`; without `samplerLoraIndices` it is the token mapping itself (one row per token).
   */
  readonly sampler: LoRAMapping;
}

/**
 * Slot indices as a caller passes them (`tokenLoraIndices`, `samplerLoraIndices`): one per row,
 * each an integer in `[0, maxLoras)` or -1 for no adapter. They are copied once and checked on the
 * copy: a bad entry throws {@link LoRAError} `E_INDEX`, more than `maxNumTokens` entries `E_CAPACITY`.
 */
export type IndexArray = Int32Array | readonly number[];

/**
 * The caller's indices copied once and checked on the copy: a second read of a Proxy or of an
 * array someone mutates could give slot 7 to a runtime with 2 slots, and kernels index memory with it.
 */
function toSlots(indices: IndexArray, maxLoras: number, maxTokens: number, what: string): Int32Array {
  const values = snapshotArray(indices, what, {
    code: 'E_INDEX',
    maxLength: maxTokens,
    expected: 'an Int32Array or number[] of slots',
    limitName: 'maxNumTokens',
    unit: 'tokens',
  });
  const slots = new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    slots[i] = v;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < -1 || v >= maxLoras) {
      throw new LoRAError(
        'E_INDEX',
        `${what}[${i}] is ${describeValue(v)}; expected an integer slot in [0, ${maxLoras}) (maxLoras = ${maxLoras}) or -1 for no LoRA`,
      );
    }
  }
  return slots;
}

/** Groups tokens by slot with a counting sort: O(T + maxLoras), no comparisons. */
export function computeMapping(
  indices: IndexArray,
  options: { maxLoras: number; maxNumTokens?: number; version?: number; what?: string },
): LoRAMapping {
  const { maxLoras, maxNumTokens = CONFIG_LIMITS.maxNumTokens, version = 0, what = 'tokenLoraIndices' } = options;
  const slots = toSlots(indices, maxLoras, maxNumTokens, what);
  const numTokens = slots.length;
  const counts = new Int32Array(maxLoras);
  for (let t = 0; t < numTokens; t++) {
    const s = slots[t] as number;
    if (s >= 0) counts[s] = (counts[s] as number) + 1;
  }
  const starts = new Int32Array(maxLoras);
  const segments: LoRASegment[] = [];
  const activeSlots: number[] = [];
  let numLoRATokens = 0;
  for (let s = 0; s < maxLoras; s++) {
    const length = counts[s] as number;
    starts[s] = numLoRATokens;
    if (length > 0) {
      segments.push(Object.freeze({ slot: s, start: numLoRATokens, length }));
      activeSlots.push(s);
    }
    numLoRATokens += length;
  }
  const sortedTokenIndices = new Int32Array(numLoRATokens);
  for (let t = 0; t < numTokens; t++) {
    const s = slots[t] as number;
    if (s >= 0) {
      sortedTokenIndices[starts[s] as number] = t;
      starts[s] = (starts[s] as number) + 1;
    }
  }
  return Object.freeze({
    version,
    numTokens,
    tokenLoraIndices: slots,
    sortedTokenIndices,
    numLoRATokens,
    segments: Object.freeze(segments),
    activeSlots: Object.freeze(activeSlots),
    noLoRA: numLoRATokens === 0,
    singleLoRA: activeSlots.length === 1 && numLoRATokens === numTokens,
    tokenBucket: bucketTokens(numTokens, maxNumTokens),
  });
}

/** Token mapping and sampler mapping for one batch; the sampler defaults to one row per token. */
export function computeMetadata(
  m: { tokenLoraIndices: IndexArray; samplerLoraIndices?: IndexArray },
  options: { maxLoras: number; maxNumTokens?: number; version?: number },
): LoRAMetadata {
  if (m === null || typeof m !== 'object') {
    throw new LoRAError('E_INDEX', `updateMetadata expects { tokenLoraIndices, samplerLoraIndices? }, got ${describeValue(m)}`);
  }
  let given: { tokenLoraIndices: IndexArray; samplerLoraIndices?: IndexArray };
  try {
    given = { tokenLoraIndices: m.tokenLoraIndices, samplerLoraIndices: m.samplerLoraIndices };
  } catch (err) {
    throw new LoRAError('E_INDEX', `updateMetadata's argument could not be read: ${describeValue((err as Error)?.message)}`);
  }
  const tokens = computeMapping(given.tokenLoraIndices, options);
  const sampler =
    given.samplerLoraIndices === undefined ? tokens : computeMapping(given.samplerLoraIndices, { ...options, what: 'samplerLoraIndices' });
  return Object.freeze({ ...tokens, sampler });
}
