import type { RE2JS } from 're2js';
import { describeValue, LoRAError } from '../errors.js';
import { checkPeftFields } from './peft-fields.js';
import { compileLayersPattern, fullMatcher, layerIndex, type NameMatcher, suffixMatcher } from './peft-patterns.js';

/** The adapter_config.json fields that change the math, normalised. */
export interface PeftAdapterConfig {
  /** `r`: the rank of modules no `rankPattern` key matches (8 when absent, as PEFT's default). */
  readonly r: number;
  /** `lora_alpha`: the alpha of modules no `alphaPattern` key matches (8 when absent, as PEFT's default). */
  readonly loraAlpha: number;
  /** A list of module-name suffixes, a regex string matched against whole module names, or null. */
  readonly targetModules: readonly string[] | string | null;
  /** Modules never adapted, in target_modules' forms. */
  readonly excludeModules: readonly string[] | string | null;
  /** `use_rslora`: scale by `alpha / √r` (rank-stabilised LoRA) instead of `alpha / r`. */
  readonly useRslora: boolean;
  /** `use_dora`: every linear module it adapts carries a DoRA magnitude vector (`lora_magnitude_vector`). */
  readonly useDora: boolean;
  /**
   * `alora_invocation_tokens` (Activated LoRA): the token ids whose last occurrence in a prompt
   * starts the adapter (see `LoRAAdapter.invocationTokens`); null for a plain adapter.
   */
  readonly aloraInvocationTokens: readonly number[] | null;
  /** `rank_pattern`: key → rank for the modules a key matches as a dotted suffix (a key may be a regex); the first matching key wins. */
  readonly rankPattern: Readonly<Record<string, number>>;
  /** `alpha_pattern`: key → alpha, matched as `rankPattern`. */
  readonly alphaPattern: Readonly<Record<string, number>>;
  /** GPT-2 style Conv1D base weights `[in, out]`; the LoRA A/B layouts are the same either way. */
  readonly fanInFanOut: boolean;
  /** Layer indices the adapter applies to (PEFT `layers_to_transform`), or null for all. */
  readonly layersToTransform: readonly number[] | null;
  /**
   * `layers_pattern`: the name(s) of the module list whose index `layersToTransform` reads (`layers`
   * in `model.layers.3.mlp`), or null for any name: then the index is the first numeric
   * segment that follows at least two others.
   */
  readonly layersPattern: readonly string[] | null;
}

/** Bounds for what a config may ask of the loader (ranks beyond this are not LoRA; keys beyond this are not a model). */
const MAX_CONFIG_RANK = 65_536;
const MAX_PATTERN_KEYS = 10_000;

const format = (message: string): never => {
  throw new LoRAError('E_FORMAT', `adapter_config.json: ${message}`);
};

/** The config's patterns, compiled once when it is parsed (never once per module). */
interface Matchers {
  target: NameMatcher | readonly string[] | null;
  exclude: NameMatcher | readonly string[] | null;
  rank: readonly [NameMatcher, number][];
  alpha: readonly [NameMatcher, number][];
  layersPattern: readonly RE2JS[] | null;
}
const MATCHERS = new WeakMap<PeftAdapterConfig, Matchers>();

function numberMap(value: unknown, field: string, integer: boolean): Record<string, number> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) return format(`${field} must be an object, got ${describeValue(value)}`);
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > MAX_PATTERN_KEYS) format(`${field} has ${entries.length} keys; at most ${MAX_PATTERN_KEYS}`);
  const out: Record<string, number> = {};
  for (const [k, v] of entries) {
    const ok = typeof v === 'number' && Number.isFinite(v) && (!integer || (Number.isInteger(v) && v > 0 && v <= MAX_CONFIG_RANK));
    if (!ok) {
      format(
        `${field}[${describeValue(k)}] must be ${integer ? `a positive integer ≤ ${MAX_CONFIG_RANK}` : 'a finite number'}, got ${describeValue(v)}`,
      );
    }
    Object.defineProperty(out, k, { value: v, enumerable: true });
  }
  return out;
}

/** A list of names or one regex string (target_modules / exclude_modules), or null. */
function moduleList(value: unknown, field: string): readonly string[] | string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && value.length <= MAX_PATTERN_KEYS && value.every((m) => typeof m === 'string')) {
    return Object.freeze([...(value as string[])]);
  }
  return format(`${field} must be a list of names or a regex string, got ${describeValue(value)}`);
}

function listMatcher(list: readonly string[] | string | null, field: string): NameMatcher | readonly string[] | null {
  if (list === null) return null;
  // "all-linear" is PEFT's shorthand (expanded against the model's layers when the adapter is made).
  if (typeof list === 'string') return list === 'all-linear' ? null : fullMatcher(list, field);
  return list;
}

function layers(value: unknown): readonly number[] | null {
  if (value === undefined || value === null || (Array.isArray(value) && value.length === 0)) return null;
  const list = typeof value === 'number' ? [value] : value;
  if (!Array.isArray(list) || list.length > MAX_PATTERN_KEYS || !list.every((i) => Number.isSafeInteger(i) && i >= 0)) {
    return format(`layers_to_transform must be a layer index or a list of them, got ${describeValue(value)}`);
  }
  return Object.freeze([...(list as number[])]);
}

/** Longer than any chat template's role marker; bounds the search a prompt costs. */
const MAX_INVOCATION_TOKENS = 1024;

function invocationTokens(value: unknown): readonly number[] | null {
  if (value === undefined || value === null) return null;
  if (
    !Array.isArray(value) ||
    value.length === 0 ||
    value.length > MAX_INVOCATION_TOKENS ||
    !value.every((t) => Number.isSafeInteger(t) && t >= 0 && t < 2 ** 31)
  ) {
    return format(
      `alora_invocation_tokens must be a list of 1 to ${MAX_INVOCATION_TOKENS} token ids (integers ≥ 0), got ${describeValue(value)}`,
    );
  }
  return Object.freeze([...(value as number[])]);
}

function layerPatterns(value: unknown): readonly string[] | null {
  if (value === undefined || value === null || value === '' || (Array.isArray(value) && value.length === 0)) return null;
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || list.length > 64 || !list.every((p) => typeof p === 'string')) {
    return format(`layers_pattern must be a string or a list of strings, got ${describeValue(value)}`);
  }
  return Object.freeze([...(list as string[])]);
}

/**
 * Validates adapter_config.json (text or parsed) and refuses every field that would make PEFT
 * compute something this loader does not (see `peft-fields.ts`), so an adapter is served the
 * way PEFT serves it or not at all.
 */
export function parsePeftConfig(input: unknown): PeftAdapterConfig {
  let raw = input;
  if (typeof input === 'string') {
    try {
      raw = JSON.parse(input);
    } catch (err) {
      format(`not valid JSON (${describeValue((err as Error).message)})`);
    }
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return format(`expected a JSON object, got ${describeValue(raw)}`);
  let c: Record<string, unknown>;
  try {
    c = Object.fromEntries(Object.entries(raw as Record<string, unknown>));
  } catch (err) {
    return format(`could not be read (${describeValue((err as Error)?.message)})`);
  }
  checkPeftFields(c);
  const r = c.r ?? 8;
  if (typeof r !== 'number' || !Number.isInteger(r) || r < 1 || r > MAX_CONFIG_RANK)
    format(`r must be a positive integer ≤ ${MAX_CONFIG_RANK}, got ${describeValue(r)}`);
  const loraAlpha = c.lora_alpha ?? 8;
  if (typeof loraAlpha !== 'number' || !Number.isFinite(loraAlpha))
    format(`lora_alpha must be a finite number, got ${describeValue(loraAlpha)}`);
  for (const flag of ['use_rslora', 'fan_in_fan_out', 'use_dora'] as const) {
    if (c[flag] !== undefined && typeof c[flag] !== 'boolean') format(`${flag} must be a boolean, got ${describeValue(c[flag])}`);
  }
  const rankPattern = numberMap(c.rank_pattern, 'rank_pattern', true);
  const alphaPattern = numberMap(c.alpha_pattern, 'alpha_pattern', false);
  const config: PeftAdapterConfig = Object.freeze({
    r: r as number,
    loraAlpha: loraAlpha as number,
    targetModules: moduleList(c.target_modules, 'target_modules'),
    excludeModules: moduleList(c.exclude_modules, 'exclude_modules'),
    useRslora: c.use_rslora === true,
    useDora: c.use_dora === true,
    aloraInvocationTokens: invocationTokens(c.alora_invocation_tokens),
    rankPattern: Object.freeze(rankPattern),
    alphaPattern: Object.freeze(alphaPattern),
    fanInFanOut: c.fan_in_fan_out === true,
    layersToTransform: layers(c.layers_to_transform),
    layersPattern: layerPatterns(c.layers_pattern),
  });
  const patternPairs = (pattern: Record<string, number>, field: string): [NameMatcher, number][] =>
    Object.entries(pattern).map(([key, value]) => [suffixMatcher(key, field), value]);
  MATCHERS.set(config, {
    target: listMatcher(config.targetModules, 'target_modules'),
    exclude: listMatcher(config.excludeModules, 'exclude_modules'),
    rank: patternPairs(rankPattern, 'rank_pattern'),
    alpha: patternPairs(alphaPattern, 'alpha_pattern'),
    layersPattern: config.layersPattern === null ? null : compileLayersPattern(config.layersPattern, 'layers_pattern'),
  });
  return config;
}

/** Compiled patterns of a config (parsing again if it was built by hand rather than by parsePeftConfig). */
function matchersOf(config: PeftAdapterConfig): Matchers {
  const known = MATCHERS.get(config);
  if (known) return known;
  const reparsed = parsePeftConfig({
    r: config.r,
    lora_alpha: config.loraAlpha,
    target_modules: config.targetModules,
    exclude_modules: config.excludeModules,
    use_rslora: config.useRslora,
    use_dora: config.useDora,
    alora_invocation_tokens: config.aloraInvocationTokens,
    rank_pattern: config.rankPattern,
    alpha_pattern: config.alphaPattern,
    fan_in_fan_out: config.fanInFanOut,
    layers_to_transform: config.layersToTransform,
    layers_pattern: config.layersPattern,
  });
  const matchers = MATCHERS.get(reparsed) as Matchers;
  MATCHERS.set(config, matchers);
  return matchers;
}

/** The rank/alpha override that applies to `module`, PEFT's way (first matching key wins). */
function patternValue(pairs: readonly [NameMatcher, number][], module: string): number | undefined {
  for (const [matcher, value] of pairs) if (matcher.test(module)) return value;
  return undefined;
}

/** The scaling folded into B for one module: `alpha / r`, or `alpha / √r` with rsLoRA. */
export function moduleScale(
  config: PeftAdapterConfig,
  module: string,
): {
  /** The module's rank: its `rankPattern` value, else `r`. */
  rank: number;
  /** `alpha / rank`, or `alpha / √rank` with `useRslora`; alpha is the module's `alphaPattern` value, else `loraAlpha`. */
  scale: number;
} {
  const m = matchersOf(config);
  const rank = patternValue(m.rank, module) ?? config.r;
  const alpha = patternValue(m.alpha, module) ?? config.loraAlpha;
  return { rank, scale: config.useRslora ? alpha / Math.sqrt(rank) : alpha / rank };
}

const inList = (list: readonly string[], module: string): boolean => list.some((name) => module === name || module.endsWith(`.${name}`));

const matches = (m: NameMatcher | readonly string[], module: string): boolean =>
  Array.isArray(m) ? inList(m as readonly string[], module) : (m as NameMatcher).test(module);

/**
 * Does the config adapt this module? PEFT `tuners_utils.py` `check_target_module_exists`:
 * exclude_modules first, then target_modules (a string: full regex match; a list: the name or a
 * dotted suffix), and for a list, layers_to_transform on the layer index found by layers_pattern.
 */
export function isTargeted(config: PeftAdapterConfig, module: string): boolean {
  const m = matchersOf(config);
  if (m.exclude !== null && matches(m.exclude, module)) return false;
  if (m.target === null) return true;
  if (!Array.isArray(m.target)) return (m.target as NameMatcher).test(module);
  const list = m.target as readonly string[];
  if (list.includes(module)) return true;
  if (!inList(list, module)) return false;
  if (config.layersToTransform === null) return true;
  const index = layerIndex(module, m.layersPattern);
  return index !== undefined && config.layersToTransform.includes(index);
}
