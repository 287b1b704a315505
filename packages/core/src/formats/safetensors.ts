import { describeValue, LoRAError } from '../errors.js';
import { bf16ToFloat, floatToBf16, floatToHalf, halfToFloat } from './half.js';

/**
 * safetensors: 8-byte little-endian header length N, N bytes of JSON header, then the data area.
 * Every header field is checked before anything is allocated, so a lying file (a header length of
 * 2^60, a shape of 10^12 elements, overlapping offsets) costs nothing but an E_FORMAT error, and
 * no output is larger than twice the input (F16/BF16 widen to float32).
 */

export type SafetensorsDType = 'F32' | 'F16' | 'BF16' | 'F64';

export interface SafetensorsTensor {
  dtype: SafetensorsDType;
  shape: number[];
  /** Decoded to float32. A view into the input where dtype is F32 and the data is aligned. */
  data: Float32Array;
}

export interface ParsedSafetensors {
  tensors: Record<string, SafetensorsTensor>;
  metadata: Record<string, string>;
}

export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

const DTYPE_BYTES: Record<SafetensorsDType, number> = { F32: 4, F16: 2, BF16: 2, F64: 8 };
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const fail = (message: string): never => {
  throw new LoRAError('E_FORMAT', `safetensors: ${message}`);
};

interface Entry {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  begin: number;
  end: number;
}

function readHeaderLength(bytes: Uint8Array): number {
  if (!(bytes instanceof Uint8Array)) fail(`expected a Uint8Array, got ${describeValue(bytes)}`);
  if (bytes.length < 8) fail(`file is ${bytes.length} bytes; a header length needs 8`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, 8);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(bytes.length - 8)) fail(`header length ${n} runs past the end of the ${bytes.length}-byte file`);
  if (n > BigInt(MAX_HEADER_BYTES)) fail(`header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  return Number(n);
}

function readEntry(name: string, value: unknown, dataLength: number): Entry {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    fail(`tensor "${name}": expected an object, got ${describeValue(value)}`);
  const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
  if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES)) {
    fail(`tensor "${name}": dtype ${describeValue(dtype)} is not supported; expected one of ${Object.keys(DTYPE_BYTES).join(', ')}`);
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    fail(`tensor "${name}": shape must be an array of non-negative integers, got ${describeValue(shape)}`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
    fail(`tensor "${name}": data_offsets must be [begin, end] non-negative integers, got ${describeValue(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end || end > dataLength)
    fail(`tensor "${name}": data_offsets [${begin}, ${end}] lie outside the ${dataLength}-byte data area`);
  const width = DTYPE_BYTES[dtype as SafetensorsDType];
  let elements = 1;
  for (const d of shape as number[]) {
    elements *= d;
    // Past the data span already: stop before the product grows without bound.
    if (elements * width > end - begin)
      fail(`tensor "${name}": shape [${(shape as number[]).join(', ')}] needs more than the ${end - begin} bytes of its data_offsets`);
  }
  if (elements * width !== end - begin) {
    fail(
      `tensor "${name}": shape [${(shape as number[]).join(', ')}] × ${width} bytes = ${elements * width} bytes, but data_offsets span ${end - begin}`,
    );
  }
  return { name, dtype: dtype as SafetensorsDType, shape: shape as number[], begin, end };
}

function decode(bytes: Uint8Array, at: number, e: Entry): Float32Array {
  const n = (e.end - e.begin) / DTYPE_BYTES[e.dtype];
  const offset = bytes.byteOffset + at + e.begin;
  if (e.dtype === 'F32') {
    // Zero-copy where the platform and alignment allow; otherwise one copy.
    if (LITTLE_ENDIAN && offset % 4 === 0) return new Float32Array(bytes.buffer, offset, n);
    const out = new Float32Array(n);
    const view = new DataView(bytes.buffer, offset, n * 4);
    for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
    return out;
  }
  const out = new Float32Array(n);
  const view = new DataView(bytes.buffer, offset, e.end - e.begin);
  if (e.dtype === 'F64') for (let i = 0; i < n; i++) out[i] = view.getFloat64(i * 8, true);
  else if (e.dtype === 'F16') for (let i = 0; i < n; i++) out[i] = halfToFloat(view.getUint16(i * 2, true));
  else for (let i = 0; i < n; i++) out[i] = bf16ToFloat(view.getUint16(i * 2, true));
  return out;
}

/** Parses and validates a safetensors file; tensor data decoded to float32. */
export function parseSafetensors(bytes: Uint8Array): ParsedSafetensors {
  const headerLength = readHeaderLength(bytes);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)));
  } catch (err) {
    fail(`header is not valid UTF-8 JSON (${(err as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header))
    fail(`header must be a JSON object, got ${describeValue(header)}`);
  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
    // A "__proto__" key would reach the prototype of the result objects.
    if (name === '__proto__') fail('a tensor may not be named "__proto__"');
    if (name === '__metadata__') {
      if (value === null || typeof value !== 'object' || Array.isArray(value))
        fail(`__metadata__ must be an object of strings, got ${describeValue(value)}`);
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string' || k === '__proto__')
          fail(`__metadata__["${k}"] must be a string under a plain key, got ${describeValue(v)}`);
        metadata[k] = v as string;
      }
      continue;
    }
    entries.push(readEntry(name, value, dataLength));
  }
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1] as Entry;
    const cur = sorted[i] as Entry;
    if (cur.begin < prev.end)
      fail(`tensors "${prev.name}" [${prev.begin}, ${prev.end}] and "${cur.name}" [${cur.begin}, ${cur.end}] overlap`);
  }
  const tensors: Record<string, SafetensorsTensor> = {};
  for (const e of entries) tensors[e.name] = { dtype: e.dtype, shape: e.shape, data: decode(bytes, dataStart, e) };
  return { tensors, metadata };
}

export type SerializableDType = 'F32' | 'F16' | 'BF16';

/** Writes tensors (float32 data) as a safetensors file in `dtype`; data starts 8-byte aligned. */
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
  if (metadata !== undefined) header.__metadata__ = metadata;
  let offset = 0;
  const names = Object.keys(tensors);
  for (const name of names) {
    const t = tensors[name] as { shape: readonly number[]; data: ArrayLike<number> };
    const elements = t.shape.reduce((a, b) => a * b, 1);
    if (elements !== t.data.length) {
      throw new LoRAError(
        'E_SHAPE',
        `serializeSafetensors: tensor "${name}" has shape [${t.shape.join(', ')}] but ${t.data.length} values`,
      );
    }
    header[name] = { dtype, shape: [...t.shape], data_offsets: [offset, offset + elements * width] };
    offset += elements * width;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) json = new TextEncoder().encode(JSON.stringify(header) + ' '.repeat(padded - json.length));
  const out = new Uint8Array(8 + json.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
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
