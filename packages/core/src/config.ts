import type { LoRABackend } from './backend.js';
import { describeValue, LoRAError } from './errors.js';

/** Plain JSON (apart from a backend object) so an app can read it from a file or an env var. */
export interface LoRAConfig {
  /** A registered backend name, or a backend object built by the caller. */
  backend: 'cpu' | 'webgl' | 'webgpu' | 'tpu-sim' | (string & {}) | LoRABackend;
  /** Device slots for adapters (default 4). */
  maxLoras?: number;
  /** Largest adapter rank a slot holds (default 16); larger adapters are rejected with E_RANK. */
  maxLoraRank?: number;
  /** Host cache size in adapters, LRU, pinned adapters are never evicted (default 2 * maxLoras). */
  maxCpuLoras?: number;
  /** Largest batch in tokens (default 8192). */
  maxNumTokens?: number;
  /** Passed unchanged to the backend factory. */
  backendOptions?: Record<string, unknown>;
}

export interface ResolvedLoRAConfig {
  readonly backend: string | LoRABackend;
  readonly maxLoras: number;
  readonly maxLoraRank: number;
  readonly maxCpuLoras: number;
  readonly maxNumTokens: number;
  readonly backendOptions: Readonly<Record<string, unknown>>;
}

export const DEFAULT_MAX_LORAS = 4;
export const DEFAULT_MAX_LORA_RANK = 16;
export const DEFAULT_MAX_NUM_TOKENS = 8192;

const KNOWN_KEYS = ['backend', 'maxLoras', 'maxLoraRank', 'maxCpuLoras', 'maxNumTokens', 'backendOptions'];

function positiveInteger(config: Record<string, unknown>, key: string, fallback: number): number {
  const value = config[key];
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new LoRAError('E_CONFIG', `${key} must be a positive integer, got ${describeValue(value)}`);
  }
  return value;
}

/** Fills defaults and rejects anything a backend could trip over later. */
export function resolveConfig(config: LoRAConfig): ResolvedLoRAConfig {
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    throw new LoRAError('E_CONFIG', `expected a LoRAConfig object, got ${describeValue(config)}`);
  }
  const raw = config as unknown as Record<string, unknown>;
  const unknown = Object.keys(raw).filter((k) => !KNOWN_KEYS.includes(k));
  if (unknown.length > 0) {
    throw new LoRAError('E_CONFIG', `unknown LoRAConfig key(s) ${unknown.join(', ')}; expected only ${KNOWN_KEYS.join(', ')}`);
  }
  const { backend } = config;
  if (typeof backend !== 'string' && (backend === null || typeof backend !== 'object')) {
    throw new LoRAError('E_CONFIG', `backend must be a backend name such as "cpu" or a LoRABackend object, got ${describeValue(backend)}`);
  }
  const maxLoras = positiveInteger(raw, 'maxLoras', DEFAULT_MAX_LORAS);
  const maxLoraRank = positiveInteger(raw, 'maxLoraRank', DEFAULT_MAX_LORA_RANK);
  const maxCpuLoras = positiveInteger(raw, 'maxCpuLoras', 2 * maxLoras);
  const maxNumTokens = positiveInteger(raw, 'maxNumTokens', DEFAULT_MAX_NUM_TOKENS);
  if (maxCpuLoras < maxLoras) {
    throw new LoRAError(
      'E_CONFIG',
      `maxCpuLoras (${maxCpuLoras}) must be at least maxLoras (${maxLoras}): every device slot is backed by the host cache`,
    );
  }
  const options = config.backendOptions ?? {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new LoRAError('E_CONFIG', `backendOptions must be an object, got ${describeValue(options)}`);
  }
  return Object.freeze({ backend, maxLoras, maxLoraRank, maxCpuLoras, maxNumTokens, backendOptions: Object.freeze({ ...options }) });
}

/** For backend factories: rejects `backendOptions` keys the backend does not know (typos in a JSON config). */
export function checkBackendOptions(backend: string, options: Readonly<Record<string, unknown>>, known: readonly string[]): void {
  const unknown = Object.keys(options).filter((k) => !known.includes(k));
  if (unknown.length > 0) {
    const expected = known.length > 0 ? `expected only ${known.join(', ')}` : 'it takes none';
    throw new LoRAError('E_CONFIG', `unknown backendOptions key(s) ${unknown.join(', ')} for backend "${backend}"; ${expected}`);
  }
}
