import type { LoRABackend } from './backend.js';
import { describeValue, LoRAError } from './errors.js';

/** A backend name (first-party or registered), or a backend object built by the caller. */
export type BackendChoice = 'cpu' | 'webgl' | 'webgpu' | 'tpu-sim' | 'reference' | (string & {}) | LoRABackend;

/** Plain JSON (apart from a backend object) so an app can read it from a file or an env var. */
export interface LoRAConfig {
  /**
   * A backend, or several in order of preference (`['webgpu', 'webgl', 'cpu']`): the first that
   * initialises is used, as onnxruntime-web's execution providers. A backend that cannot start
   * here (`E_BACKEND`: package missing, no device) passes to the next; a config error does not.
   */
  backend: BackendChoice | readonly BackendChoice[];
  /** Device slots for adapters (default 4). */
  maxLoras?: number;
  /** Largest adapter rank a slot holds (default 16); larger adapters are rejected with E_RANK. */
  maxLoraRank?: number;
  /** Host cache size in adapters, LRU, pinned adapters are never evicted (default 2 * maxLoras). */
  maxCpuLoras?: number;
  /**
   * Host cache size in bytes: the registered adapters' weights (A, B and DoRA magnitudes as
   * float32, at their true ranks) may take at most this many; registering past it evicts least
   * recently used unpinned adapters first (default: no limit but `maxCpuLoras`).
   */
  maxCpuLoraBytes?: number;
  /** Largest batch in tokens (default 8192). */
  maxNumTokens?: number;
  /**
   * Bytes the layers' adapter slot stacks may take in all (host mirror and device copy, every
   * layer of the runtime; default 2 GiB). A layer whose stacks would pass it is refused with
   * E_CAPACITY before anything is allocated, and the message says how many bytes it needs.
   */
  maxSlotMemory?: number;
  /**
   * Passed unchanged to the backend factory. With a list of backends, one object per backend name:
   * `{ cpu: { engine: 'js' }, webgpu: { path: 'bgmv' } }`.
   */
  backendOptions?: Record<string, unknown>;
}

/**
 * A {@link LoRAConfig} as {@link resolveConfig} returns it: checked, defaults filled in, frozen.
 * A runtime's `config` is this with `backend` and `backendOptions` of the backend that started.
 */
export interface ResolvedLoRAConfig {
  /** The backend in use (before `createLoRA` chose: the first candidate). */
  readonly backend: string | LoRABackend;
  /** Every candidate with the options its factory receives, in order of preference. */
  readonly candidates: readonly BackendCandidate[];
  /** Device slots: distinct adapters one batch can use (default {@link DEFAULT_MAX_LORAS}). */
  readonly maxLoras: number;
  /** Rank every slot stack is padded to; adapter modules of higher rank are refused with E_RANK (default {@link DEFAULT_MAX_LORA_RANK}). */
  readonly maxLoraRank: number;
  /** Adapters the host cache holds, least recently used unpinned one evicted; at least `maxLoras` (default 2 × maxLoras). */
  readonly maxCpuLoras: number;
  /** Bytes of adapter weights the host cache holds at most (default {@link CONFIG_LIMITS}.maxCpuLoraBytes: no limit in practice). */
  readonly maxCpuLoraBytes: number;
  /** Largest batch in tokens, and the largest token bucket (default {@link DEFAULT_MAX_NUM_TOKENS}). */
  readonly maxNumTokens: number;
  /** Bytes all layers' slot stacks may take, host mirror and device copy (default {@link DEFAULT_MAX_SLOT_MEMORY}). */
  readonly maxSlotMemory: number;
  /**
   * `LoRAConfig.backendOptions` as given (a frozen copy, `{}` when absent; with a list of backends,
   * one object per name). In a runtime's `config`: the options of the backend in use.
   */
  readonly backendOptions: Readonly<Record<string, unknown>>;
}

/** One backend `createLoRA` may try, with the options its factory receives; listed in order of preference. */
export interface BackendCandidate {
  /** A backend name, resolved through the registry (importing a first-party package if needed), or a backend object used as it is. */
  readonly backend: string | LoRABackend;
  /** All of backendOptions for a single backend; its own entry when backends are listed. */
  readonly options: Readonly<Record<string, unknown>>;
}

/** Device slots when `maxLoras` is not set. */
export const DEFAULT_MAX_LORAS = 4;
/** Slot rank when `maxLoraRank` is not set: adapters up to r = 16 fit. */
export const DEFAULT_MAX_LORA_RANK = 16;
/** Largest batch in tokens when `maxNumTokens` is not set. */
export const DEFAULT_MAX_NUM_TOKENS = 8192;
/** Slot-stack budget in bytes (2 GiB) when `maxSlotMemory` is not set. */
export const DEFAULT_MAX_SLOT_MEMORY = 2 * 1024 ** 3;

/**
 * Upper limits of the numeric settings. They are far above what a real deployment uses (vLLM
 * offers max_lora_rank up to 512) and low enough that no setting alone can make a layer try to
 * allocate more than a typed array holds; the byte budget `maxSlotMemory` bounds the product.
 */
export const CONFIG_LIMITS = Object.freeze({
  /** Most device slots `maxLoras` may ask for. */
  maxLoras: 1024,
  /** Largest `maxLoraRank`. */
  maxLoraRank: 1024,
  /** Largest host cache, in adapters (`maxCpuLoras`). */
  maxCpuLoras: 65_536,
  /** Largest host cache, in bytes (`maxCpuLoraBytes`, 2^45: 32 TiB); also its default. */
  maxCpuLoraBytes: 2 ** 45,
  /** Largest `maxNumTokens` (2^20 tokens); also the bound `computeMapping` applies when given none. */
  maxNumTokens: 1 << 20,
  /** Largest `maxSlotMemory`, in bytes (2^45, 32 TiB). */
  maxSlotMemory: 2 ** 45,
});

const KNOWN_KEYS = [
  'backend',
  'maxLoras',
  'maxLoraRank',
  'maxCpuLoras',
  'maxCpuLoraBytes',
  'maxNumTokens',
  'maxSlotMemory',
  'backendOptions',
];

function positiveInteger(config: Record<string, unknown>, key: keyof typeof CONFIG_LIMITS, fallback: number): number {
  const value = config[key];
  if (value === undefined) return fallback;
  const limit = CONFIG_LIMITS[key];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > limit) {
    throw new LoRAError('E_CONFIG', `${key} must be an integer from 1 to ${limit}, got ${describeValue(value)}`);
  }
  return value;
}

/** A plain copy of the caller's object, read once: getters run once and may not throw past us. */
function ownEntries(value: object, what: string): Record<string, unknown> {
  try {
    const copy: Record<string, unknown> = {};
    for (const key of Object.keys(value))
      Object.defineProperty(copy, key, { value: (value as Record<string, unknown>)[key], enumerable: true });
    return copy;
  } catch (err) {
    throw new LoRAError('E_CONFIG', `${what} could not be read: ${describeValue((err as Error)?.message)}`);
  }
}

/** Fills defaults and rejects anything a backend could trip over later. */
export function resolveConfig(config: LoRAConfig): ResolvedLoRAConfig {
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    throw new LoRAError('E_CONFIG', `expected a LoRAConfig object, got ${describeValue(config)}`);
  }
  const raw = ownEntries(config, 'the LoRAConfig');
  const unknown = Object.keys(raw).filter((k) => !KNOWN_KEYS.includes(k));
  if (unknown.length > 0) {
    throw new LoRAError(
      'E_CONFIG',
      `unknown LoRAConfig key(s) ${unknown
        .slice(0, 8)
        .map((k) => describeValue(k))
        .join(', ')}; expected only ${KNOWN_KEYS.join(', ')}`,
    );
  }
  const backends = backendList(raw.backend);
  const maxLoras = positiveInteger(raw, 'maxLoras', DEFAULT_MAX_LORAS);
  const maxLoraRank = positiveInteger(raw, 'maxLoraRank', DEFAULT_MAX_LORA_RANK);
  const maxCpuLoras = positiveInteger(raw, 'maxCpuLoras', 2 * maxLoras);
  const maxCpuLoraBytes = positiveInteger(raw, 'maxCpuLoraBytes', CONFIG_LIMITS.maxCpuLoraBytes);
  const maxNumTokens = positiveInteger(raw, 'maxNumTokens', DEFAULT_MAX_NUM_TOKENS);
  const maxSlotMemory = positiveInteger(raw, 'maxSlotMemory', DEFAULT_MAX_SLOT_MEMORY);
  if (maxCpuLoras < maxLoras) {
    throw new LoRAError(
      'E_CONFIG',
      `maxCpuLoras (${maxCpuLoras}) must be at least maxLoras (${maxLoras}): every device slot is backed by the host cache`,
    );
  }
  const options = raw.backendOptions ?? {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new LoRAError('E_CONFIG', `backendOptions must be an object, got ${describeValue(options)}`);
  }
  const backendOptions = Object.freeze(ownEntries(options, 'backendOptions'));
  const listed = Array.isArray(raw.backend);
  if (listed) checkOptionsPerBackend(backendOptions, backends);
  const candidates = backends.map((backend) => {
    if (!listed) return Object.freeze({ backend, options: backendOptions });
    const own = typeof backend === 'string' ? (backendOptions[backend] as object | undefined) : undefined;
    return Object.freeze({ backend, options: Object.freeze(own === undefined ? {} : ownEntries(own, `backendOptions.${backend}`)) });
  });
  return Object.freeze({
    backend: backends[0] as string | LoRABackend,
    candidates: Object.freeze(candidates),
    maxLoras,
    maxLoraRank,
    maxCpuLoras,
    maxCpuLoraBytes,
    maxNumTokens,
    maxSlotMemory,
    backendOptions,
  });
}

/** Longer lists than this are a mistake (there are four first-party backends). */
const MAX_BACKEND_CHOICES = 16;

function backendList(value: unknown): readonly (string | LoRABackend)[] {
  const isChoice = (v: unknown) => typeof v === 'string' || (v !== null && typeof v === 'object' && !Array.isArray(v));
  if (!Array.isArray(value)) {
    if (!isChoice(value)) {
      throw new LoRAError(
        'E_CONFIG',
        `backend must be a backend name such as "cpu", a LoRABackend object, or a list of them, got ${describeValue(value)}`,
      );
    }
    return Object.freeze([value as string | LoRABackend]);
  }
  if (value.length === 0 || value.length > MAX_BACKEND_CHOICES) {
    throw new LoRAError('E_CONFIG', `backend lists 1 to ${MAX_BACKEND_CHOICES} backends in order of preference, got ${value.length}`);
  }
  const list = [...value];
  list.forEach((v, i) => {
    if (!isChoice(v))
      throw new LoRAError('E_CONFIG', `backend[${i}] must be a backend name or a LoRABackend object, got ${describeValue(v)}`);
  });
  return Object.freeze(list as (string | LoRABackend)[]);
}

/** With a list of backends, backendOptions holds one object per listed name. */
function checkOptionsPerBackend(options: Readonly<Record<string, unknown>>, backends: readonly (string | LoRABackend)[]): void {
  const names = backends.filter((b): b is string => typeof b === 'string');
  for (const [key, value] of Object.entries(options)) {
    if (!names.includes(key)) {
      throw new LoRAError(
        'E_CONFIG',
        `with a list of backends, backendOptions holds one object per listed name (${names.map((n) => `"${n}"`).join(', ') || 'none listed by name'}); got key ${describeValue(key)}`,
      );
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new LoRAError(
        'E_CONFIG',
        `backendOptions.${key} must be an object of options for backend "${key}", got ${describeValue(value)}`,
      );
    }
  }
}

/** For backend factories: rejects `backendOptions` keys the backend does not know (typos in a JSON config). */
export function checkBackendOptions(backend: string, options: Readonly<Record<string, unknown>>, known: readonly string[]): void {
  const unknown = Object.keys(options).filter((k) => !known.includes(k));
  if (unknown.length > 0) {
    const expected = known.length > 0 ? `expected only ${known.join(', ')}` : 'it takes none';
    throw new LoRAError(
      'E_CONFIG',
      `unknown backendOptions key(s) ${unknown.slice(0, 8).join(', ')} for backend "${backend}"; ${expected}`,
    );
  }
}
