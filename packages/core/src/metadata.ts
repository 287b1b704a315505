import { bucketTokens } from './bucketing.js';
import { CONFIG_LIMITS } from './config.js';
import { describeValue, LoRAError } from './errors.js';
import { checkStrength, snapshotArray } from './validate.js';

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
  /**
   * Increases with every `updateMetadata`: backends free uploads of older batches by it. A batch's
   * mix lanes share its version (each is its own mapping object: key caches on the object).
   */
  readonly version: number;
  /** Rows of the batch: tokens for the token mapping, sequences being sampled for `sampler`; at most `maxNumTokens`. */
  readonly numTokens: number;
  /** Slot per token, `-1` for no adapter (a copy of what the caller passed; a row whose strength is 0 reads -1). */
  readonly tokenLoraIndices: Int32Array;
  /**
   * Per-row strength (vLLM issue 52733's per-request `lora_scale`): shrink multiplies row t's
   * products by `tokenScales[t]` on top of the call's scale. Undefined when every row has strength 1
   * (kernels then do no extra work); rows with strength 0 are not here at all: they map to -1.
   */
  readonly tokenScales: Float32Array | undefined;
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
  /**
   * Adapter mixes (issue #19): each lane is one more mapping of the same rows, with the mix's next
   * adapter (and its weight as the row's strength) for rows of a mixed request and -1 elsewhere.
   * `addLoRALinear`, `addLoRAEmbedding` and `addLoRALogits` add every lane's term after the main
   * mapping's, in lane order; empty when no request mixes adapters.
   */
  readonly mixLanes: readonly LoRAMetadata[];
}

/**
 * Slot indices as a caller passes them (`tokenLoraIndices`, `samplerLoraIndices`): one per row,
 * each an integer in `[0, maxLoras)` or -1 for no adapter. They are copied once and checked on the
 * copy: a bad entry throws {@link LoRAError} `E_INDEX`, more than `maxNumTokens` entries `E_CAPACITY`.
 */
export type IndexArray = Int32Array | readonly number[];

/**
 * Per-row LoRA strengths as a caller passes them (`tokenLoraScales`, `samplerLoraScales`): one
 * finite number per row of the matching indices (1 = the adapter as trained, 0 = the base model,
 * bit for bit). Copied once and checked on the copy: a wrong length throws `E_SHAPE`, a value that
 * is not a finite number `E_CONFIG`.
 */
export type ScaleArray = Float32Array | Float64Array | readonly number[];

/** The caller's strengths copied once; undefined when every one is 1 (the kernels' fast path). */
function toScales(scales: ScaleArray, rows: number, what: string, of: string): Float32Array | undefined {
  const values = snapshotArray(scales, what, {
    code: 'E_SHAPE',
    // One past the rows: a longer list gets the length message below, and no huge copy is made.
    maxLength: rows + 1,
    expected: `a Float32Array or number[] with one strength per entry of ${of}`,
  });
  if (values.length !== rows) {
    const given = values.length > rows ? `more than ${rows}` : `${values.length}`;
    throw new LoRAError('E_SHAPE', `${what} has ${given} strengths; ${of} has ${rows} rows and needs one per row`);
  }
  const out = new Float32Array(rows);
  let allOne = true;
  for (let i = 0; i < rows; i++) {
    const v = checkStrength(values[i], `${what}[${i}]`);
    out[i] = v;
    if (v !== 1) allOne = false;
  }
  return allOne ? undefined : out;
}

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
  options: { maxLoras: number; maxNumTokens?: number; version?: number; what?: string; scales?: ScaleArray; scalesWhat?: string },
): LoRAMapping {
  const { maxLoras, maxNumTokens = CONFIG_LIMITS.maxNumTokens, version = 0, what = 'tokenLoraIndices' } = options;
  const slots = toSlots(indices, maxLoras, maxNumTokens, what);
  const numTokens = slots.length;
  const scales =
    options.scales === undefined ? undefined : toScales(options.scales, numTokens, options.scalesWhat ?? 'tokenLoraScales', what);
  // Strength 0 is the base model: the row leaves the mapping, so no kernel touches it (bit-exact, and free).
  if (scales !== undefined) for (let t = 0; t < numTokens; t++) if (scales[t] === 0) slots[t] = -1;
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
    tokenScales: scales,
    sortedTokenIndices,
    numLoRATokens,
    segments: Object.freeze(segments),
    activeSlots: Object.freeze(activeSlots),
    noLoRA: numLoRATokens === 0,
    singleLoRA: activeSlots.length === 1 && numLoRATokens === numTokens,
    tokenBucket: bucketTokens(numTokens, maxNumTokens),
  });
}

/** What `updateMetadata` takes: the slot of every token and, optionally, of every sampled row, and their strengths. */
export interface BatchMapping {
  /** Slot per token, -1 for the base model. */
  tokenLoraIndices: IndexArray;
  /** Slot per sampled sequence (lm_head's rows); default: one row per token, the token mapping. */
  samplerLoraIndices?: IndexArray;
  /** Strength per token (default 1 everywhere); see {@link ScaleArray}. */
  tokenLoraScales?: ScaleArray;
  /** Strength per sampled row; required when `tokenLoraScales` and `samplerLoraIndices` are both given. */
  samplerLoraScales?: ScaleArray;
  /**
   * Adapter mixes: one more mapping of the same rows per lane (see {@link LoRAMetadata.mixLanes}),
   * with its weights as strengths; at most `maxLoras − 1` lanes (a mix of k adapters needs k slots).
   */
  mixLanes?: readonly Omit<BatchMapping, 'mixLanes'>[];
}

/** Token mapping and sampler mapping for one batch; the sampler defaults to one row per token. */
export function computeMetadata(m: BatchMapping, options: { maxLoras: number; maxNumTokens?: number; version?: number }): LoRAMetadata {
  if (m === null || typeof m !== 'object') {
    throw new LoRAError('E_INDEX', `updateMetadata expects { tokenLoraIndices, samplerLoraIndices? }, got ${describeValue(m)}`);
  }
  let given: BatchMapping;
  try {
    given = {
      tokenLoraIndices: m.tokenLoraIndices,
      samplerLoraIndices: m.samplerLoraIndices,
      tokenLoraScales: m.tokenLoraScales,
      samplerLoraScales: m.samplerLoraScales,
      mixLanes: m.mixLanes,
    };
  } catch (err) {
    throw new LoRAError('E_INDEX', `updateMetadata's argument could not be read: ${describeValue((err as Error)?.message)}`);
  }
  if (given.samplerLoraScales !== undefined && given.samplerLoraIndices === undefined) {
    throw new LoRAError(
      'E_SHAPE',
      'samplerLoraScales was given without samplerLoraIndices: the sampler rows are the tokens, whose strengths are tokenLoraScales',
    );
  }
  if (given.tokenLoraScales !== undefined && given.samplerLoraIndices !== undefined && given.samplerLoraScales === undefined) {
    throw new LoRAError(
      'E_SHAPE',
      'tokenLoraScales was given with samplerLoraIndices but without samplerLoraScales: give one strength per sampled row too',
    );
  }
  const tokens = computeMapping(given.tokenLoraIndices, { ...options, scales: given.tokenLoraScales });
  const sampler =
    given.samplerLoraIndices === undefined
      ? tokens
      : computeMapping(given.samplerLoraIndices, {
          ...options,
          what: 'samplerLoraIndices',
          scales: given.samplerLoraScales,
          scalesWhat: 'samplerLoraScales',
        });
  const mixLanes = computeLanes(given.mixLanes, tokens, sampler, options);
  return Object.freeze({ ...tokens, sampler, mixLanes });
}

/** Each lane as its own metadata, checked to map the same rows as the main mapping. */
function computeLanes(
  lanes: unknown,
  tokens: LoRAMapping,
  sampler: LoRAMapping,
  options: { maxLoras: number; maxNumTokens?: number; version?: number },
): readonly LoRAMetadata[] {
  if (lanes === undefined) return Object.freeze([]);
  const given = snapshotArray(lanes, 'mixLanes', {
    code: 'E_SHAPE',
    // One past the limit: a longer list gets the capacity message below, and no huge copy is made.
    maxLength: options.maxLoras,
    expected: 'an array of { tokenLoraIndices, tokenLoraScales?, samplerLoraIndices?, samplerLoraScales? }',
  });
  if (given.length > options.maxLoras - 1) {
    throw new LoRAError(
      'E_CAPACITY',
      `mixLanes has ${given.length >= options.maxLoras ? `at least ${given.length}` : given.length} lanes; a mix of k adapters needs k slots, so at most maxLoras − 1 = ${options.maxLoras - 1} lanes`,
    );
  }
  return Object.freeze(
    given.map((lane, k) => {
      if (lane === null || typeof lane !== 'object')
        throw new LoRAError('E_SHAPE', `mixLanes[${k}] must be { tokenLoraIndices, tokenLoraScales?, … }, got ${describeValue(lane)}`);
      const meta = computeMetadata(lane as BatchMapping, options);
      if (meta.mixLanes.length > 0) throw new LoRAError('E_SHAPE', `mixLanes[${k}] has lanes of its own; lanes do not nest`);
      if (meta.numTokens !== tokens.numTokens || meta.sampler.numTokens !== sampler.numTokens) {
        throw new LoRAError(
          'E_SHAPE',
          `mixLanes[${k}] maps ${meta.numTokens} tokens and ${meta.sampler.numTokens} sampled rows; the batch has ${tokens.numTokens} and ${sampler.numTokens}`,
        );
      }
      return meta;
    }),
  );
}
