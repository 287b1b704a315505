import { describeValue, LoRAError } from '../errors.js';
import { bf16BytesToFloats, floatToBf16, floatToHalf, halfBytesToFloats } from './half.js';
import { type HeaderEntry, HeaderSyntaxError, type ParsedHeader, readHeader } from './safetensors-header.js';

/**
 * safetensors: 8-byte little-endian header length N, N bytes of JSON header, then the data area.
 * Every header field is checked before anything is allocated, so a lying file (a header length of
 * 2^60, a shape of 10^12 elements, overlapping offsets) costs nothing but an E_FORMAT error, and
 * no output is larger than twice the input (F16/BF16 widen to float32).
 */

export type SafetensorsDType = 'F32' | 'F16' | 'BF16' | 'F64';

/** One tensor of a parsed file, its values decoded to float32. */
export interface SafetensorsTensor {
  /** Its dtype in the file, before decoding. */
  dtype: SafetensorsDType;
  /** Its shape as the header gives it (a copy; `[]` for a scalar). */
  shape: number[];
  /** Decoded to float32. A view into the input where dtype is F32 and the data is aligned. */
  data: Float32Array;
}

/** A safetensors file as {@link parseSafetensors} returns it. */
export interface ParsedSafetensors {
  /** Every tensor by its name in the header, in header order (a name such as `__proto__` is an own property too). */
  tensors: Record<string, SafetensorsTensor>;
  /** The header's `__metadata__` strings, `{}` when it has none. */
  metadata: Record<string, string>;
}

/** Options of {@link parseSafetensors}. */
export interface ParseSafetensorsOptions {
  /**
   * Where a tensor's float32 values go: an array of exactly `length` elements that the caller
   * keeps, or undefined for the default (a view into the input for aligned F32 data, else a new
   * array). Called once per tensor, in header order, once the file's layout has been validated. A loader that keeps
   * the tensors uses it to decode straight into its own arrays: one pass per tensor, and no view
   * that would keep the whole file alive.
   */
  readonly output?: (
    name: string,
    tensor: { dtype: SafetensorsDType; shape: readonly number[]; length: number },
  ) => Float32Array | undefined;
}

/** The reference implementation's limit (`MAX_HEADER_SIZE` in safetensors `tensor.rs`). */
export const MAX_HEADER_BYTES = 100_000_000;
/**
 * Our own bound on tensors per file, so that parse time and memory stay proportional to a real
 * checkpoint (the format has none; a DeepSeek-V3-sized adapter of every expert has ~94k tensors).
 */
export const MAX_TENSORS = 200_000;

const DTYPE_BYTES: Record<SafetensorsDType, number> = { F32: 4, F16: 2, BF16: 2, F64: 8 };
/** Every dtype of the format (safetensors `Dtype`), with its size in bits: valid files, not all decodable here. */
const FORMAT_DTYPE_BITS: Record<string, number> = {
  BOOL: 8,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  F8_E4M3FNUZ: 8,
  F8_E5M2FNUZ: 8,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  C64: 64,
  F64: 64,
  I64: 64,
  U64: 64,
};
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const fail = (message: string): never => {
  throw new LoRAError('E_FORMAT', `safetensors: ${message}`);
};

/**
 * The header length a file's first 8 bytes announce, checked against the format's limit and the
 * size of the whole file (`fileSize`; `prefix` may hold only its beginning).
 */
export function readSafetensorsHeaderLength(prefix: Uint8Array, fileSize: number): number {
  if (!(prefix instanceof Uint8Array)) fail(`expected a Uint8Array, got ${describeValue(prefix)}`);
  if (fileSize < 8 || prefix.length < 8) fail(`file is ${fileSize} bytes; a header length needs 8`);
  const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) fail(`header length ${n} exceeds the format's ${MAX_HEADER_BYTES}-byte limit`);
  if (n > BigInt(fileSize - 8)) fail(`header length ${n} runs past the end of the ${fileSize}-byte file`);
  return Number(n);
}

/**
 * The reference implementation's `Metadata::validate`: tensors sorted by offsets must tile the
 * data area from 0 with no hole or overlap, each exactly its shape × dtype size, and the file must
 * end where the last tensor ends (no trailing bytes: a polyglot file is refused).
 */
function checkLayout(entries: readonly HeaderEntry[], dataLength: number): void {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const e of sorted) {
    if (e.begin !== at || e.end < e.begin) {
      fail(
        `tensor "${short(e.name)}": data_offsets [${e.begin}, ${e.end}] ${e.begin > at ? `leave a hole at bytes [${at}, ${e.begin})` : e.end < e.begin ? 'end before they begin' : `overlap the previous tensor, which ends at ${at}`}`,
      );
    }
    const bits = FORMAT_DTYPE_BITS[e.dtype] as number;
    let elements = 1n;
    for (const d of e.shape) elements *= BigInt(d);
    const totalBits = elements * BigInt(bits);
    if (totalBits >= 1n << 64n) fail(`tensor "${short(e.name)}": shape [${e.shape.join(', ')}] overflows the element count`);
    if (totalBits % 8n !== 0n)
      fail(`tensor "${short(e.name)}": shape [${e.shape.join(', ')}] of ${e.dtype} is not a whole number of bytes`);
    const size = totalBits / 8n;
    if (size !== BigInt(e.end - e.begin)) {
      fail(
        `tensor "${short(e.name)}": shape [${e.shape.join(', ')}] of ${e.dtype} is ${size} bytes, but data_offsets span ${e.end - e.begin}`,
      );
    }
    at = e.end;
  }
  if (at !== dataLength) {
    fail(`the tensors end at byte ${at} of the data area, but the file has ${dataLength} data bytes (${dataLength - at} trailing)`);
  }
}

/**
 * Raw little-endian tensor bytes of `dtype` decoded into `out` (`out.length` values; `bytes` holds
 * exactly their bytes): F32 copied, F16/BF16 widened, F64 narrowed. A loader reading a tensor in
 * pieces decodes each piece into its span of `out`.
 */
export function decodeSafetensorsData(dtype: SafetensorsDType, bytes: Uint8Array, out: Float32Array): void {
  const n = out.length;
  if (bytes.length !== n * DTYPE_BYTES[dtype]) {
    throw new LoRAError('E_CONFIG', `decodeSafetensorsData: ${bytes.length} bytes of ${dtype} do not make ${n} values`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  if (dtype === 'F16') halfBytesToFloats(bytes, out);
  else if (dtype === 'BF16') bf16BytesToFloats(bytes, out);
  else if (dtype === 'F64') for (let i = 0; i < n; i++) out[i] = view.getFloat64(i * 8, true);
  else if (LITTLE_ENDIAN && bytes.byteOffset % 4 === 0) out.set(new Float32Array(bytes.buffer, bytes.byteOffset, n));
  else for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
}

/** A tensor's values as float32: into `into` when given (of the right length), else a view (aligned F32) or a new array. */
function decode(bytes: Uint8Array, at: number, e: SafetensorsEntry, into: Float32Array | undefined): Float32Array {
  const dtype = e.dtype as SafetensorsDType;
  const n = (e.end - e.begin) / DTYPE_BYTES[dtype];
  const offset = bytes.byteOffset + at + e.begin;
  // Zero-copy where the platform and alignment allow and the caller wants no array of its own.
  if (dtype === 'F32' && LITTLE_ENDIAN && offset % 4 === 0 && into === undefined) return new Float32Array(bytes.buffer, offset, n);
  const out = into ?? new Float32Array(n);
  decodeSafetensorsData(dtype, new Uint8Array(bytes.buffer, offset, e.end - e.begin), out);
  return out;
}

/** The caller's array for a tensor (see `ParseSafetensorsOptions.output`), checked. */
function outputFor(options: ParseSafetensorsOptions, e: SafetensorsEntry): Float32Array | undefined {
  if (options.output === undefined) return undefined;
  const length = (e.end - e.begin) / DTYPE_BYTES[e.dtype as SafetensorsDType];
  const into = options.output(e.name, { dtype: e.dtype as SafetensorsDType, shape: e.shape, length });
  if (into !== undefined && !(into instanceof Float32Array && into.length === length)) {
    throw new LoRAError(
      'E_CONFIG',
      `parseSafetensors: output for tensor "${short(e.name)}" must be a Float32Array of ${length} elements, got ${describeValue(into)}`,
    );
  }
  return into;
}

const short = (name: string): string => (name.length > 80 ? `${name.slice(0, 77)}...` : name);

/** Where each tensor of a safetensors file lies, from its header alone. */
export interface SafetensorsLayout {
  /** File offset of the data area (8 + the header length): entries' `begin`/`end` count from here. */
  readonly dataStart: number;
  /** The header's `__metadata__` strings, `{}` when it has none (or it is null). */
  readonly metadata: Record<string, string>;
  /** In header order. */
  readonly entries: readonly SafetensorsEntry[];
}

/** One tensor of a safetensors header: any dtype of the format, its shape, its byte range in the data area. */
export type SafetensorsEntry = HeaderEntry;

/**
 * Validates a safetensors file from its header alone, with every rule `parseSafetensors` applies
 * (see `safetensors-header.ts` and `checkLayout`: the tensors must tile the `fileSize − dataStart`
 * bytes after the header exactly). `prefix` is the file's beginning, at least 8 + the header length
 * (`readSafetensorsHeaderLength`) bytes; a loader that reads at offsets reads only that much, then
 * each tensor where it goes.
 */
export function parseSafetensorsLayout(prefix: Uint8Array, fileSize: number): SafetensorsLayout {
  const headerLength = readSafetensorsHeaderLength(prefix, fileSize);
  if (prefix.length < 8 + headerLength) {
    throw new LoRAError(
      'E_CONFIG',
      `parseSafetensorsLayout: the header needs the file's first ${8 + headerLength} bytes, got ${prefix.length}`,
    );
  }
  let text: string;
  try {
    // ignoreBOM: a byte-order mark stays in the text and is refused like any character before "{".
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(prefix.subarray(8, 8 + headerLength));
  } catch {
    return fail('header is not valid UTF-8');
  }
  let header: ParsedHeader;
  try {
    header = readHeader(text, MAX_TENSORS);
  } catch (err) {
    if (err instanceof HeaderSyntaxError) return fail(`header: ${err.message}`);
    throw err;
  }
  for (const e of header.entries) {
    if (!(e.dtype in FORMAT_DTYPE_BITS)) {
      fail(`tensor "${short(e.name)}": dtype ${describeValue(e.dtype)} is not a safetensors dtype`);
    }
  }
  const dataStart = 8 + headerLength;
  checkLayout(header.entries, fileSize - dataStart);
  const metadata: Record<string, string> = {};
  for (const [k, v] of header.metadata ?? []) Object.defineProperty(metadata, k, { value: v, enumerable: true, writable: true });
  return { dataStart, metadata, entries: header.entries };
}

/** A tensor's dtype when this library decodes it; a valid one it does not (integers, FP8) is refused with E_UNSUPPORTED naming the tensor. */
export function decodableDType(e: SafetensorsEntry): SafetensorsDType {
  if (!(e.dtype in DTYPE_BYTES)) {
    throw new LoRAError(
      'E_UNSUPPORTED',
      `safetensors: tensor "${short(e.name)}" is ${e.dtype}; only ${Object.keys(DTYPE_BYTES).join(', ')} tensors are read`,
    );
  }
  return e.dtype as SafetensorsDType;
}

/**
 * Parses and validates a safetensors file with the reference implementation's rules (see
 * `parseSafetensorsLayout`); tensor data decoded to float32. A valid file with a dtype we do not
 * decode (integers, FP8) is refused with E_UNSUPPORTED naming the tensor. Work and memory are
 * proportional to the file: header ≤ 100 MB, ≤ MAX_TENSORS tensors, output ≤ 2× input.
 */
export function parseSafetensors(bytes: Uint8Array | ArrayBuffer, options: ParseSafetensorsOptions = {}): ParsedSafetensors {
  const input = bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : bytes;
  const { dataStart, metadata, entries } = parseSafetensorsLayout(input, (input as Uint8Array)?.length);
  const tensors: Record<string, SafetensorsTensor> = {};
  for (const e of entries) {
    const tensor = { dtype: decodableDType(e), shape: [...e.shape], data: decode(input, dataStart, e, outputFor(options, e)) };
    // defineProperty: a tensor may be called "__proto__" (the format allows it) without touching the prototype.
    Object.defineProperty(tensors, e.name, { value: tensor, enumerable: true, writable: true, configurable: true });
  }
  return { tensors, metadata };
}

/** The dtypes {@link serializeSafetensors} writes: float32 as it is, IEEE half and bfloat16 rounded to nearest even. */
export type SerializableDType = 'F32' | 'F16' | 'BF16';

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function checkWritableName(name: string, what: string): void {
  if (LONE_SURROGATE.test(name)) {
    throw new LoRAError('E_CONFIG', `serializeSafetensors: ${what} ${describeValue(name)} is not valid Unicode (a lone surrogate)`);
  }
}

/**
 * Writes tensors (float32 data) as a safetensors file in `dtype`; data starts 8-byte aligned.
 * Whatever it writes, `parseSafetensors` (and the reference implementation) reads back: names and
 * metadata are checked, and a header past the format's limit is refused instead of written.
 */
export function serializeSafetensors(
  tensors: Record<string, { shape: readonly number[]; data: ArrayLike<number> }>,
  metadata?: Record<string, string>,
  dtype: SerializableDType = 'F32',
): Uint8Array {
  if (!(dtype in DTYPE_BYTES) || dtype === ('F64' as string)) {
    throw new LoRAError('E_UNSUPPORTED', `serializeSafetensors writes F32, F16 or BF16, got ${describeValue(dtype)}`);
  }
  const width = DTYPE_BYTES[dtype];
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) {
    const meta: Record<string, string> = {};
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string')
        throw new LoRAError('E_CONFIG', `serializeSafetensors: metadata ${describeValue(k)} must be a string, got ${describeValue(v)}`);
      checkWritableName(k, 'metadata key');
      checkWritableName(v, 'metadata value');
      Object.defineProperty(meta, k, { value: v, enumerable: true });
    }
    header.__metadata__ = meta;
  }
  let offset = 0;
  const names = Object.keys(tensors);
  if (names.length > MAX_TENSORS)
    throw new LoRAError('E_CAPACITY', `serializeSafetensors: ${names.length} tensors; at most ${MAX_TENSORS}`);
  for (const name of names) {
    if (name === '__metadata__')
      throw new LoRAError('E_CONFIG', 'serializeSafetensors: a tensor may not be named "__metadata__" (the format reserves it)');
    checkWritableName(name, 'tensor name');
    const t = tensors[name] as { shape: readonly number[]; data: ArrayLike<number> };
    if (!Array.isArray(t?.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new LoRAError(
        'E_SHAPE',
        `serializeSafetensors: tensor "${short(name)}" needs a shape of non-negative integers, got ${describeValue(t?.shape)}`,
      );
    }
    const elements = t.shape.reduce((a, b) => a * b, 1);
    if (elements !== t.data?.length) {
      throw new LoRAError(
        'E_SHAPE',
        `serializeSafetensors: tensor "${short(name)}" has shape [${t.shape.join(', ')}] but ${describeValue(t.data?.length)} values`,
      );
    }
    Object.defineProperty(header, name, {
      value: { dtype, shape: [...t.shape], data_offsets: [offset, offset + elements * width] },
      enumerable: true,
    });
    offset += elements * width;
  }
  const text = JSON.stringify(header);
  const encoded = new TextEncoder().encode(text);
  const padded = Math.ceil(encoded.length / 8) * 8;
  if (padded > MAX_HEADER_BYTES) {
    throw new LoRAError('E_CAPACITY', `serializeSafetensors: the header would be ${padded} bytes; the format allows ${MAX_HEADER_BYTES}`);
  }
  // Trailing spaces align the data area to 8 bytes (the reference writer pads the same way).
  const out = new Uint8Array(8 + padded + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(padded), true);
  out.set(encoded, 8);
  out.fill(0x20, 8 + encoded.length, 8 + padded);
  let at = 8 + padded;
  for (const name of names) {
    const data = (tensors[name] as { data: ArrayLike<number> }).data;
    for (let i = 0; i < data.length; i++, at += width) {
      const v = data[i] as number;
      if (dtype === 'F32') view.setFloat32(at, v, true);
      else view.setUint16(at, dtype === 'F16' ? floatToHalf(v) : floatToBf16(v), true);
    }
  }
  return out;
}
