import { describeValue } from '@lora/core';
import { badParam } from '../http/errors.js';

/**
 * Typed reads of a JSON request body, each refusal a 400 naming the field (`param`), as OpenAI's
 * API does. `null` counts as absent: the official clients send it for unset optional fields.
 */
export class Fields {
  readonly #body: Record<string, unknown>;

  constructor(body: Record<string, unknown>) {
    this.#body = body;
  }

  raw(name: string): unknown {
    const v = Object.hasOwn(this.#body, name) ? this.#body[name] : undefined;
    return v === null ? undefined : v;
  }

  has(name: string): boolean {
    return this.raw(name) !== undefined;
  }

  string(name: string): string | undefined {
    const v = this.raw(name);
    if (v !== undefined && typeof v !== 'string') throw badParam(name, `${name} must be a string, got ${describeValue(v)}`);
    return v;
  }

  requiredString(name: string): string {
    const v = this.string(name);
    if (v === undefined || v.length === 0) throw badParam(name, `${name} is required`, 'missing_required_parameter');
    return v;
  }

  boolean(name: string): boolean | undefined {
    const v = this.raw(name);
    if (v !== undefined && typeof v !== 'boolean') throw badParam(name, `${name} must be a boolean, got ${describeValue(v)}`);
    return v;
  }

  /** A finite number within [min, max] (`minExclusive`: (min, max]). */
  number(name: string, range: { min?: number; max?: number; minExclusive?: boolean } = {}): number | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    const { min = Number.NEGATIVE_INFINITY, max = Number.POSITIVE_INFINITY, minExclusive = false } = range;
    const ok = typeof v === 'number' && Number.isFinite(v) && (minExclusive ? v > min : v >= min) && v <= max;
    if (!ok) {
      const lo = min === Number.NEGATIVE_INFINITY ? '' : minExclusive ? `> ${min}` : `≥ ${min}`;
      const hi = max === Number.POSITIVE_INFINITY ? '' : `≤ ${max}`;
      throw badParam(
        name,
        `${name} must be a number${lo || hi ? ` ${[lo, hi].filter(Boolean).join(' and ')}` : ''}, got ${describeValue(v)}`,
      );
    }
    return v as number;
  }

  integer(name: string, min = Number.MIN_SAFE_INTEGER): number | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    if (!Number.isSafeInteger(v) || (v as number) < min) {
      throw badParam(name, `${name} must be an integer${min > Number.MIN_SAFE_INTEGER ? ` ≥ ${min}` : ''}, got ${describeValue(v)}`);
    }
    return v as number;
  }

  /** Fields this server does not implement: accepted only at the value that means "off". */
  onlyOff(name: string, isOff: (v: unknown) => boolean, what: string): void {
    const v = this.raw(name);
    if (v !== undefined && !isOff(v))
      throw badParam(name, `${name} is not supported by this server (${what}), got ${describeValue(v)}`, 'unsupported_parameter');
  }
}
