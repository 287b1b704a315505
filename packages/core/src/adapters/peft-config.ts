import { describeValue, LoRAError } from '../errors.js';

/** The adapter_config.json fields that change the math, normalised. */
export interface PeftAdapterConfig {
  readonly r: number;
  readonly loraAlpha: number;
  /** A list of module-name suffixes, a regex string matched against whole module names, or null. */
  readonly targetModules: readonly string[] | string | null;
  readonly useRslora: boolean;
  readonly rankPattern: Readonly<Record<string, number>>;
  readonly alphaPattern: Readonly<Record<string, number>>;
  /** GPT-2 style Conv1D base weights `[in, out]`; the LoRA A/B layouts are the same either way. */
  readonly fanInFanOut: boolean;
}

const format = (message: string): never => {
  throw new LoRAError('E_FORMAT', `adapter_config.json: ${message}`);
};
const unsupported = (message: string): never => {
  throw new LoRAError('E_UNSUPPORTED', `adapter_config.json: ${message}`);
};

function numberMap(value: unknown, field: string, integer: boolean): Record<string, number> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) return format(`${field} must be an object, got ${describeValue(value)}`);
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const ok = typeof v === 'number' && Number.isFinite(v) && (!integer || (Number.isInteger(v) && v > 0));
    if (!ok) format(`${field}["${k}"] must be ${integer ? 'a positive integer' : 'a finite number'}, got ${describeValue(v)}`);
    compilePattern(k, field);
    Object.defineProperty(out, k, { value: v, enumerable: true });
  }
  return out;
}

/** PEFT matches a pattern key against a module name as `(.*\.)?key$`. */
function compilePattern(key: string, field: string): RegExp {
  try {
    return new RegExp(`(?:^|\\.)(?:${key})$`);
  } catch {
    return format(`${field} key ${describeValue(key)} is not a valid regular expression`);
  }
}

/** The rank/alpha override that applies to `module`, PEFT's way (first matching key wins). */
export function patternValue(pattern: Readonly<Record<string, number>>, module: string): number | undefined {
  for (const [key, value] of Object.entries(pattern)) if (compilePattern(key, 'pattern').test(module)) return value;
  return undefined;
}

/** Validates adapter_config.json (text or parsed) and rejects what would give silently wrong output. */
export function parsePeftConfig(input: unknown): PeftAdapterConfig {
  let raw = input;
  if (typeof input === 'string') {
    try {
      raw = JSON.parse(input);
    } catch (err) {
      format(`not valid JSON (${(err as Error).message})`);
    }
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return format(`expected a JSON object, got ${describeValue(raw)}`);
  const c = raw as Record<string, unknown>;
  if (c.peft_type !== undefined && c.peft_type !== 'LORA')
    unsupported(`peft_type ${describeValue(c.peft_type)} is not supported; only "LORA"`);
  if (c.use_dora === true) unsupported('DoRA (use_dora: true) is not supported: its magnitude vector would be ignored');
  if (c.bias !== undefined && c.bias !== 'none')
    unsupported(`bias ${describeValue(c.bias)} is not supported; only "none" (LoRA biases would be ignored)`);
  const toSave = c.modules_to_save;
  if (toSave !== undefined && toSave !== null && !(Array.isArray(toSave) && toSave.length === 0)) {
    unsupported(`modules_to_save ${describeValue(toSave)} is not supported: those fully trained modules would be ignored`);
  }
  const r = c.r ?? 8;
  if (typeof r !== 'number' || !Number.isInteger(r) || r < 1) format(`r must be a positive integer, got ${describeValue(r)}`);
  const loraAlpha = c.lora_alpha ?? 8;
  if (typeof loraAlpha !== 'number' || !Number.isFinite(loraAlpha))
    format(`lora_alpha must be a finite number, got ${describeValue(loraAlpha)}`);
  const t = c.target_modules ?? null;
  const targetsOk = t === null || typeof t === 'string' || (Array.isArray(t) && t.every((m) => typeof m === 'string'));
  if (!targetsOk) format(`target_modules must be a list of names or a regex string, got ${describeValue(t)}`);
  for (const flag of ['use_rslora', 'fan_in_fan_out'] as const) {
    if (c[flag] !== undefined && typeof c[flag] !== 'boolean') format(`${flag} must be a boolean, got ${describeValue(c[flag])}`);
  }
  return Object.freeze({
    r: r as number,
    loraAlpha: loraAlpha as number,
    targetModules: Array.isArray(t) ? Object.freeze([...(t as string[])]) : (t as string | null),
    useRslora: c.use_rslora === true,
    rankPattern: Object.freeze(numberMap(c.rank_pattern, 'rank_pattern', true)),
    alphaPattern: Object.freeze(numberMap(c.alpha_pattern, 'alpha_pattern', false)),
    fanInFanOut: c.fan_in_fan_out === true,
  });
}

/** The scaling folded into B for one module: `alpha / r`, or `alpha / √r` with rsLoRA. */
export function moduleScale(config: PeftAdapterConfig, module: string): { rank: number; scale: number } {
  const rank = patternValue(config.rankPattern, module) ?? config.r;
  const alpha = patternValue(config.alphaPattern, module) ?? config.loraAlpha;
  return { rank, scale: config.useRslora ? alpha / Math.sqrt(rank) : alpha / rank };
}

/** Does target_modules name this module? (PEFT: list entries match as suffixes, a string as a full regex.) */
export function isTargeted(config: PeftAdapterConfig, module: string): boolean {
  const t = config.targetModules;
  if (t === null || t === 'all-linear') return true;
  if (typeof t === 'string') {
    try {
      return new RegExp(`^(?:${t})$`).test(module);
    } catch {
      return format(`target_modules ${describeValue(t)} is not a valid regular expression`);
    }
  }
  return t.some((name) => module === name || module.endsWith(`.${name}`));
}
