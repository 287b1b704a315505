import { describeValue, LoRAError } from '../errors.js';
import { checkScale } from '../validate.js';

/** Host-side adapter weights, as loaded from PEFT files (or built by hand). */
export interface AdapterModuleWeights {
  /** Module path without PEFT's `base_model.model.` prefix, e.g. `model.layers.0.self_attn.q_proj`. */
  readonly name: string;
  /** `linear`: A `[r, in]`, B `[out, r]`. `embedding`: A `[r, V]`, B `[D, r]` (PEFT's layouts). */
  readonly kind: 'linear' | 'embedding';
  /** r: rows of A and columns of B; at most the runtime's `maxLoraRank` to be registered (E_RANK). */
  readonly rank: number;
  /** `lora_alpha / r`, or `lora_alpha / √r` with rsLoRA, after rank_pattern / alpha_pattern. */
  readonly scale: number;
  /** lora_A, row-major `[rank, inFeatures]`; every value finite. */
  readonly a: Float32Array;
  /** lora_B, row-major `[outFeatures, rank]`, unscaled (`scale` is applied when a slot is written); every value finite. */
  readonly b: Float32Array;
  /** `in` for linear, `V` for embedding. */
  readonly inFeatures: number;
  /** `out` for linear, `D` for embedding. */
  readonly outFeatures: number;
  /**
   * DoRA (PEFT `use_dora`): the module's `lora_magnitude_vector` m, `[out]`. A linear layer then
   * computes `m / ‖W + scale·B·A‖ ⊙ (W·x + scale·B·A·x)` (+ bias) for the tokens of this adapter,
   * the row norms of W + scale·B·A taken once, when the adapter enters a slot (PEFT `lora/dora.py`
   * `DoraLinearLayer`); an embedding scales its rows by `m / ‖column of W + scale·(B·A)ᵀ‖` per
   * embedding dimension (`DoraEmbeddingLayer`). docs/contract.md "DoRA".
   */
  readonly magnitude?: Float32Array;
}

/**
 * An adapter as {@link AdapterManager.register} takes it: an id and one entry of weights per module
 * it adapts. {@link createAdapter} and {@link loadPeftAdapter} build it checked and frozen.
 */
export interface LoRAAdapter {
  /** The name requests ask for (`setBatch`): 1 to 256 characters, unique in a runtime. */
  readonly id: string;
  /** Largest module rank. */
  readonly rank: number;
  /** Weights by module name (the entry's `name`); modules it does not list get zeros in their slots. */
  readonly modules: ReadonlyMap<string, AdapterModuleWeights>;
  /**
   * Activated LoRA (PEFT `alora_invocation_tokens`, vLLM PR 19710): the adapter applies only from
   * the last occurrence of these tokens in a request's prompt on (those tokens included, and every
   * generated token); a prompt without them gets the base model throughout. Engines apply it per
   * request (`AdapterManager.setBatch`'s `firstAdapterTokens`). Absent: a plain adapter.
   */
  readonly invocationTokens?: readonly number[];
}

/** Adapter ids appear in URLs, metrics labels and error messages; a bounded length keeps those bounded. */
const MAX_ADAPTER_ID_LENGTH = 256;
/** More modules than any model has (a 405B Llama has ~900 LoRA-targetable modules). */
const MAX_ADAPTER_MODULES = 100_000;
const MAX_MODULE_NAME_LENGTH = 1024;

/** Adapters built (and so checked) by `createAdapter`: registering them needs no second scan of their weights. */
const CHECKED = new WeakSet<LoRAAdapter>();

export function isCheckedAdapter(adapter: unknown): boolean {
  return typeof adapter === 'object' && adapter !== null && CHECKED.has(adapter as LoRAAdapter);
}

export function checkAdapterId(id: unknown): string {
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_ADAPTER_ID_LENGTH) {
    throw new LoRAError(
      'E_CONFIG',
      `adapter id must be a non-empty string of at most ${MAX_ADAPTER_ID_LENGTH} characters, got ${describeValue(id)}${typeof id === 'string' ? ` (${id.length} characters)` : ''}`,
    );
  }
  return id;
}

const positiveInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;

/** The index of the first NaN or ±Infinity, or -1. */
function firstNonFinite(values: Float32Array): number {
  // Every adapter load scans all its weights (on the thread that runs engine steps too), so the
  // common case — all finite — takes the fast path: a float32 is NaN or ±Infinity exactly when its
  // 8 exponent bits are all ones, and then (bits & 0x7f800000) + 0x00800000 carries into bit 31.
  // Integer ORs over four words per iteration run about twice as fast as float compares.
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const n = bits.length - (bits.length % 4);
  let flags = 0;
  for (let i = 0; i < n && flags >= 0; i += 4) {
    flags |=
      (((bits[i] as number) & 0x7f800000) + 0x00800000) |
      (((bits[i + 1] as number) & 0x7f800000) + 0x00800000) |
      (((bits[i + 2] as number) & 0x7f800000) + 0x00800000) |
      (((bits[i + 3] as number) & 0x7f800000) + 0x00800000);
  }
  // All finite so far: only the last few (fewer than four) are left. Else find the first the plain way.
  for (let i = flags >= 0 ? n : 0; i < values.length; i++) {
    const v = values[i] as number;
    // v - v is NaN exactly for NaN and ±Infinity.
    if (v - v !== 0) return i;
  }
  return -1;
}

/**
 * One module's weights checked and copied into a frozen record (the arrays are shared, not
 * copied). Sizes must match the rank, the scale must be finite, and so must every weight: a NaN
 * in one adapter would reach other requests through kernels that multiply every slot by a
 * 0/1 mask (vLLM's one-hot einsum: NaN · 0 = NaN).
 */
function checkModuleWeights(value: unknown, adapterId: string): AdapterModuleWeights {
  let m: AdapterModuleWeights;
  try {
    const v = value as AdapterModuleWeights;
    m = {
      name: v.name,
      kind: v.kind,
      rank: v.rank,
      scale: v.scale,
      a: v.a,
      b: v.b,
      inFeatures: v.inFeatures,
      outFeatures: v.outFeatures,
    };
    // Only present when given: a plain LoRA module keeps the shape it always had.
    if (v.magnitude !== undefined) m = { ...m, magnitude: v.magnitude };
  } catch (err) {
    throw new LoRAError('E_CONFIG', `adapter "${adapterId}": a module could not be read: ${describeValue((err as Error)?.message)}`);
  }
  const where = `adapter "${adapterId}" module ${describeValue(m.name)}`;
  if (typeof m.name !== 'string' || m.name.length === 0 || m.name.length > MAX_MODULE_NAME_LENGTH) {
    throw new LoRAError('E_CONFIG', `${where}: name must be a non-empty string of at most ${MAX_MODULE_NAME_LENGTH} characters`);
  }
  if (m.kind !== 'linear' && m.kind !== 'embedding')
    throw new LoRAError('E_CONFIG', `${where}: kind must be "linear" or "embedding", got ${describeValue(m.kind)}`);
  if (!positiveInt(m.rank)) throw new LoRAError('E_RANK', `${where}: rank must be a positive integer, got ${describeValue(m.rank)}`);
  if (!positiveInt(m.inFeatures) || !positiveInt(m.outFeatures)) {
    throw new LoRAError(
      'E_SHAPE',
      `${where}: inFeatures and outFeatures must be positive integers, got ${describeValue(m.inFeatures)} and ${describeValue(m.outFeatures)}`,
    );
  }
  checkScale(m.scale, where);
  if (!(m.a instanceof Float32Array) || !(m.b instanceof Float32Array))
    throw new LoRAError('E_SHAPE', `${where}: a and b must be Float32Arrays, got ${describeValue(m.a)} and ${describeValue(m.b)}`);
  // PEFT stores A as [r, in] (lora_embedding_A: [r, V]) and B as [out, r] (lora_embedding_B: [D, r]).
  const [aRows, aCols] = [m.rank, m.inFeatures];
  if (m.a.length !== aRows * aCols || m.b.length !== m.outFeatures * m.rank) {
    throw new LoRAError(
      'E_SHAPE',
      `${where}: rank ${m.rank} needs A [${aRows}, ${aCols}] (${aRows * aCols} values) and B [${m.outFeatures}, ${m.rank}] (${m.outFeatures * m.rank} values), got ${m.a.length} and ${m.b.length} values`,
    );
  }
  if (m.magnitude !== undefined) checkMagnitude(m, where);
  for (const [label, values] of [
    ['A', m.a],
    ['B', m.b],
    ...(m.magnitude === undefined ? [] : ([['magnitude', m.magnitude]] as const)),
  ] as const) {
    const bad = firstNonFinite(values);
    if (bad >= 0) {
      throw new LoRAError('E_FORMAT', `${where}: ${label}[${bad}] is ${describeValue(values[bad])}; adapter weights must be finite`);
    }
  }
  return Object.freeze(m);
}

/** A DoRA magnitude vector has one value per output feature (an embedding's: per embedding dimension). */
function checkMagnitude(m: AdapterModuleWeights, where: string): void {
  if (!(m.magnitude instanceof Float32Array) || m.magnitude.length !== m.outFeatures) {
    throw new LoRAError(
      'E_SHAPE',
      `${where}: magnitude (DoRA lora_magnitude_vector) must be a Float32Array of outFeatures = ${m.outFeatures} values, got ${describeValue(m.magnitude)}`,
    );
  }
}

/** A map nobody can write to after it was checked (a plain Map would still have `set`). */
class FrozenModuleMap implements ReadonlyMap<string, AdapterModuleWeights> {
  readonly #map: Map<string, AdapterModuleWeights>;
  constructor(map: Map<string, AdapterModuleWeights>) {
    this.#map = map;
    Object.freeze(this);
  }
  get size(): number {
    return this.#map.size;
  }
  get(key: string): AdapterModuleWeights | undefined {
    return this.#map.get(key);
  }
  has(key: string): boolean {
    return this.#map.has(key);
  }
  forEach(fn: (value: AdapterModuleWeights, key: string, map: ReadonlyMap<string, AdapterModuleWeights>) => void): void {
    for (const [k, v] of this.#map) fn(v, k, this);
  }
  entries(): MapIterator<[string, AdapterModuleWeights]> {
    return this.#map.entries();
  }
  keys(): MapIterator<string> {
    return this.#map.keys();
  }
  values(): MapIterator<AdapterModuleWeights> {
    return this.#map.values();
  }
  [Symbol.iterator](): MapIterator<[string, AdapterModuleWeights]> {
    return this.#map.entries();
  }
}

/**
 * Builds an adapter from module weights, checking each module (sizes against its rank, a finite
 * scale, finite weights, one entry per module name). The result is frozen.
 */
export function createAdapter<Extra extends object = object>(
  id: string,
  modules: Iterable<AdapterModuleWeights>,
  extra?: Extra,
): LoRAAdapter & Extra {
  checkAdapterId(id);
  const map = new Map<string, AdapterModuleWeights>();
  let rank = 0;
  try {
    for (const value of modules) {
      const m = checkModuleWeights(value, id);
      if (map.has(m.name)) throw new LoRAError('E_CONFIG', `adapter "${id}" lists module ${m.name} twice`);
      if (map.size >= MAX_ADAPTER_MODULES)
        throw new LoRAError('E_CAPACITY', `adapter "${id}" has more than ${MAX_ADAPTER_MODULES} modules`);
      map.set(m.name, m);
      rank = Math.max(rank, m.rank);
    }
  } catch (err) {
    if (err instanceof LoRAError) throw err;
    throw new LoRAError('E_CONFIG', `adapter "${id}": its modules could not be read: ${describeValue((err as Error)?.message)}`);
  }
  const invocationTokens = checkInvocationTokens((extra as { invocationTokens?: unknown } | undefined)?.invocationTokens, id, map);
  const adapter = Object.freeze({
    ...(extra as Extra),
    ...(invocationTokens === undefined ? {} : { invocationTokens }),
    id,
    rank,
    modules: new FrozenModuleMap(map),
  });
  CHECKED.add(adapter);
  return adapter;
}

/** Activated LoRA's invocation tokens: 1 to 1024 token ids, on linear modules only (PEFT's aLoRA variant is for Linear layers). */
function checkInvocationTokens(
  value: unknown,
  id: string,
  modules: ReadonlyMap<string, AdapterModuleWeights>,
): readonly number[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.length === 0 || value.length > 1024 || !value.every((t) => Number.isSafeInteger(t) && t >= 0)) {
    throw new LoRAError('E_CONFIG', `adapter "${id}": invocationTokens must be 1 to 1024 token ids, got ${describeValue(value)}`);
  }
  for (const m of modules.values()) {
    if (m.kind === 'embedding')
      throw new LoRAError(
        'E_UNSUPPORTED',
        `adapter "${id}": activated LoRA (invocation tokens) applies to linear modules; ${m.name} is an embedding`,
      );
  }
  return Object.freeze([...(value as number[])]);
}
