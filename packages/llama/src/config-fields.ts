import { describeValue, LoRAError } from '@lora/core';

/**
 * Typed, bounded reads of one JSON object from an untrusted file (config.json). Every failure is a
 * `LoRAError('E_CONFIG')` naming the file, the field, what was expected and what was given. Only
 * own properties count: a key such as `constructor` or `__proto__` never reads the prototype.
 */
export class ConfigFields {
  readonly #json: Readonly<Record<string, unknown>>;
  /** The file (or file:object path) for messages, e.g. `/models/llama/config.json: rope_scaling`. */
  readonly from: string;

  constructor(json: unknown, from: string) {
    if (json === null || typeof json !== 'object' || Array.isArray(json)) {
      throw new LoRAError('E_CONFIG', `${from} must hold a JSON object, got ${describeValue(json)}`);
    }
    this.#json = json as Record<string, unknown>;
    this.from = from;
  }

  /** The raw value; null and a missing key both read as undefined (transformers treats them alike). */
  get(key: string): unknown {
    if (!Object.hasOwn(this.#json, key)) return undefined;
    const value = this.#json[key];
    return value === null ? undefined : value;
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  fail(key: string, expected: string, code: 'E_CONFIG' | 'E_UNSUPPORTED' = 'E_CONFIG'): never {
    throw new LoRAError(code, `${this.from}: ${key} must be ${expected}, got ${describeValue(this.get(key))}`);
  }

  /** An integer in [min, max]; `fallback` when absent (required when no fallback is given). */
  int(key: string, min: number, max: number, fallback?: number): number {
    const v = this.get(key);
    if (v === undefined) {
      if (fallback === undefined)
        throw new LoRAError('E_CONFIG', `${this.from}: ${key} is missing; expected an integer in [${min}, ${max}]`);
      return fallback;
    }
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) this.fail(key, `an integer in [${min}, ${max}]`);
    return v as number;
  }

  /** A finite number in (0, max]. */
  positive(key: string, max: number, fallback?: number): number {
    const v = this.get(key);
    if (v === undefined) {
      if (fallback === undefined) throw new LoRAError('E_CONFIG', `${this.from}: ${key} is missing; expected a number in (0, ${max}]`);
      return fallback;
    }
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > max) this.fail(key, `a number in (0, ${max}]`);
    return v as number;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.get(key);
    if (v === undefined) return fallback;
    if (typeof v !== 'boolean') this.fail(key, 'true or false');
    return v as boolean;
  }

  string(key: string, fallback?: string): string | undefined {
    const v = this.get(key);
    if (v === undefined) return fallback;
    if (typeof v !== 'string') this.fail(key, 'a string');
    return v as string;
  }

  /** A nested object, read with the same rules (its messages name `file: key`). */
  object(key: string): ConfigFields | undefined {
    const v = this.get(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'object' || Array.isArray(v)) this.fail(key, 'an object');
    return new ConfigFields(v, `${this.from}: ${key}`);
  }

  /** Integers in [min, max] given as one integer or a list (eos_token_id); absent = []. */
  intList(key: string, min: number, max: number, maxItems: number): number[] {
    const v = this.get(key);
    if (v === undefined) return [];
    const list = Array.isArray(v) ? v : [v];
    const ok = list.length <= maxItems && list.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= min && x <= max);
    if (!ok) this.fail(key, `an integer in [${min}, ${max}] or a list of at most ${maxItems} of them`);
    return list as number[];
  }
}
