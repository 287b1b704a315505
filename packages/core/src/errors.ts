/**
 * Every failure the library reports on purpose is a `LoRAError` with one of these codes, so that
 * callers can branch on `err.code` instead of parsing messages.
 */
export const LORA_ERROR_CODES = [
  'E_CONFIG',
  'E_BACKEND',
  'E_SHAPE',
  'E_INDEX',
  'E_RANK',
  'E_CAPACITY',
  'E_FORMAT',
  'E_UNSUPPORTED',
  'E_NOT_FOUND',
  'E_DISPOSED',
] as const;

/**
 * What kind of failure a {@link LoRAError} reports, as the library uses the codes:
 * - `E_CONFIG`: a setting or argument wrong in itself (unknown config key, bad adapter id, a
 *   non-finite scale, an adapter registered twice, an operation its state forbids).
 * - `E_BACKEND`: a backend that cannot be loaded, started or used here (package not installed, no
 *   device, the active tfjs backend is not the one the LoRA backend computes on).
 * - `E_SHAPE`: shapes or sizes that do not fit each other, the layer or the runtime.
 * - `E_INDEX`: a slot or token id out of range, input rows that do not match the batch metadata,
 *   or no batch metadata yet.
 * - `E_RANK`: an adapter rank below 1 or above `maxLoraRank`.
 * - `E_CAPACITY`: a limit reached (`maxLoras` slots, `maxCpuLoras`, `maxNumTokens`,
 *   `maxSlotMemory`, a file format's own bounds).
 * - `E_FORMAT`: file contents that are malformed (safetensors, adapter_config.json, non-finite
 *   weights) or a local file that cannot be read.
 * - `E_UNSUPPORTED`: valid input this library does not implement (DoRA, an integer or FP8 dtype, a
 *   non-float32 tensor, a Node-only helper in a browser).
 * - `E_NOT_FOUND`: an adapter that is not registered, a file that does not exist.
 * - `E_DISPOSED`: the runtime, or a tensor passed in, was already disposed.
 */
export type LoRAErrorCode = (typeof LORA_ERROR_CODES)[number];

/**
 * The longest message a LoRAError carries. Messages quote what they were given (ids, names,
 * paths), and those come from users and files: a 1 MB adapter id must not make a 1 MB message
 * (logs, HTTP error bodies). Values are already shortened by `describeValue`; this is the backstop.
 */
export const MAX_ERROR_MESSAGE = 2000;

/**
 * Marks every LoRAError, so that `instanceof` holds across copies of this class: the ESM and CJS
 * builds of core (dual package), or two entries bundled apart, each define one.
 */
const BRAND = Symbol.for('@lora/core/LoRAError');

/**
 * The one error the library throws on purpose. Its message starts with `[CODE] ` and is shortened
 * to {@link MAX_ERROR_MESSAGE} characters; branch on {@link LoRAError.code} (or use
 * {@link isLoRAError}) rather than on the text. `instanceof LoRAError` holds for errors made by
 * any copy of core (the ESM and CJS builds, two bundles), because it tests a brand, not the prototype.
 */
export class LoRAError extends Error {
  /** What kind of failure this is: one of `LORA_ERROR_CODES`, also shown in the message. */
  readonly code: LoRAErrorCode;

  constructor(code: LoRAErrorCode, message: string, options?: { cause?: unknown }) {
    const text = String(message);
    super(`[${code}] ${text.length > MAX_ERROR_MESSAGE ? `${text.slice(0, MAX_ERROR_MESSAGE - 20)}… (message shortened)` : text}`, options);
    this.name = 'LoRAError';
    this.code = code;
    Object.defineProperty(this, BRAND, { value: true });
  }

  /**
   * `value instanceof LoRAError` by the brand every LoRAError carries (`Symbol.for('@lora/core/LoRAError')`),
   * so an error from another copy of this class passes. For a subclass (`value instanceof
   * SomeSubclass`) it is the ordinary prototype-chain test.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    // Subclasses (QueueFullError, …) inherit this method: for them, the ordinary prototype test.
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class instanceof asked about, a subclass or this one
    if (this !== LoRAError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }
}

/**
 * Whether `err` is a {@link LoRAError} (from any copy of core) and, when `code` is given, one with
 * that code: a type guard for `catch` blocks, e.g. `isLoRAError(err, 'E_CAPACITY')`.
 */
export function isLoRAError(err: unknown, code?: LoRAErrorCode): err is LoRAError {
  return err instanceof LoRAError && (code === undefined || err.code === code);
}

/**
 * Renders a value for an error message: short, unambiguous about its type, and safe for hostile
 * input (never calls a value's own toString, which a parsed JSON object may have replaced).
 */
export function describeValue(value: unknown, depth = 0): string {
  try {
    if (value === null) return 'null';
    if (value === undefined) return 'undefined';
    if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
    if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : String(value);
    if (typeof value === 'boolean') return String(value);
    if (typeof value === 'bigint') return `${value}n`;
    if (typeof value === 'symbol' || typeof value === 'function') return typeof value;
    if (Array.isArray(value)) {
      if (depth > 0) return `array(${value.length})`;
      const items = value.slice(0, 8).map((v) => describeValue(v, depth + 1));
      return `[${items.join(', ')}${value.length > 8 ? ', ...' : ''}]`;
    }
    const shape = (value as { shape?: unknown }).shape;
    if (Array.isArray(shape)) return `tensor of shape [${shape.map((d) => describeValue(d, 1)).join(', ')}]`;
    const name = Object.getPrototypeOf(value)?.constructor?.name;
    return typeof name === 'string' && name !== 'Object' ? name : 'object';
  } catch {
    return 'value';
  }
}
