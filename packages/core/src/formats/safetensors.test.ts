import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadPeftAdapter } from '../adapters/peft.js';
import { parsePeftConfig } from '../adapters/peft-config.js';
import { LoRAError } from '../errors.js';
import { bf16ToFloat, floatToBf16, floatToHalf, halfToFloat } from './half.js';
import { parseSafetensors, serializeSafetensors } from './safetensors.js';

/** A file from a header object and a data area, with a correct length prefix. */
function rawFile(header: unknown, data: Uint8Array = new Uint8Array(0), headerText = JSON.stringify(header)): Uint8Array {
  const json = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

describe('half and bfloat16 conversions', () => {
  it('round-trips every half value and rounds to nearest even', () => {
    for (let h = 0; h < 0x10000; h++) {
      const v = halfToFloat(h);
      if (Number.isNaN(v)) expect(Number.isNaN(halfToFloat(floatToHalf(v)))).toBe(true);
      else expect(floatToHalf(v)).toBe(h === 0x8000 ? 0x8000 : h);
    }
    expect(floatToHalf(1 + 2 ** -11)).toBe(0x3c00); // tie → even
    expect(floatToHalf(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(floatToHalf(65520)).toBe(0x7c00); // rounds past the largest half → Inf
    expect(halfToFloat(0x0001)).toBe(2 ** -24);
  });

  it('bfloat16 keeps the top 16 bits with nearest-even rounding, NaN stays NaN', () => {
    expect(bf16ToFloat(floatToBf16(1.5))).toBe(1.5);
    expect(floatToBf16(1 + 2 ** -8)).toBe(0x3f80); // tie → even
    expect(floatToBf16(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(Number.isNaN(bf16ToFloat(floatToBf16(Number.NaN)))).toBe(true);
    expect(bf16ToFloat(floatToBf16(-Infinity))).toBe(-Infinity);
  });
});

describe('safetensors', () => {
  const tensors = {
    'a.weight': { shape: [2, 3], data: Float32Array.from([1, -2, 3.5, 0, 1e-3, -65504]) },
    empty: { shape: [0, 4], data: new Float32Array(0) },
  };

  it.each(['F32', 'F16', 'BF16'] as const)('round-trips %s with metadata', (dtype) => {
    const bytes = serializeSafetensors(tensors, { format: 'pt' }, dtype);
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + headerLength) % 8).toBe(0);
    const parsed = parseSafetensors(bytes);
    expect(parsed.metadata).toEqual({ format: 'pt' });
    expect(parsed.tensors['a.weight']?.dtype).toBe(dtype);
    expect(parsed.tensors['a.weight']?.shape).toEqual([2, 3]);
    const tol = dtype === 'F32' ? 0 : dtype === 'F16' ? 1e-3 : 1e-2;
    for (const [i, v] of parsed.tensors['a.weight']!.data.entries()) {
      expect(Math.abs(v - tensors['a.weight'].data[i]!)).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(v)));
    }
    expect(parsed.tensors.empty?.data.length).toBe(0);
  });

  it('returns views into the input for aligned F32 data (no copy), copies otherwise', () => {
    const bytes = serializeSafetensors({ w: { shape: [4], data: Float32Array.from([1, 2, 3, 4]) } });
    expect(parseSafetensors(bytes).tensors.w!.data.buffer).toBe(bytes.buffer);
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    const unaligned = parseSafetensors(shifted.subarray(1));
    expect(unaligned.tensors.w!.data.buffer).not.toBe(shifted.buffer);
    expect(Array.from(unaligned.tensors.w!.data)).toEqual([1, 2, 3, 4]);
  });

  it('reads F64', () => {
    const data = new Uint8Array(16);
    new DataView(data.buffer).setFloat64(0, Math.PI, true);
    new DataView(data.buffer).setFloat64(8, -0.5, true);
    const parsed = parseSafetensors(rawFile({ x: { dtype: 'F64', shape: [2], data_offsets: [0, 16] } }, data));
    expect(Array.from(parsed.tensors.x!.data)).toEqual([Math.fround(Math.PI), -0.5]);
  });

  const lyingLength = new Uint8Array(16);
  new DataView(lyingLength.buffer).setBigUint64(0, 2n ** 60n, true);

  it.each([
    ['a file shorter than 8 bytes', new Uint8Array(3), /needs 8/],
    ['a header length of 2^60', lyingLength, /header length 1152921504606846976 runs past the end/],
    ['a header that is not JSON', rawFile(null, undefined, '{"a": '), /not valid UTF-8 JSON/],
    ['a header that is not UTF-8', rawFile(null, undefined, '{}').map((b, i) => (i === 8 ? 0xff : b)), /not valid UTF-8 JSON/],
    ['a JSON array header', rawFile([]), /must be a JSON object/],
    [
      'an unknown dtype',
      rawFile({ w: { dtype: 'I8', shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)),
      /tensor "w": dtype "I8" is not supported/,
    ],
    ['a NaN shape', rawFile(null, new Uint8Array(4), '{"w":{"dtype":"F32","shape":[NaN],"data_offsets":[0,4]}}'), /not valid UTF-8 JSON/],
    [
      'a negative dimension',
      rawFile({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(4)),
      /tensor "w": shape must be/,
    ],
    [
      'a huge shape',
      rawFile({ w: { dtype: 'F32', shape: [1e6, 1e6, 1e6], data_offsets: [0, 4] } }, new Uint8Array(4)),
      /needs more than the 4 bytes/,
    ],
    [
      'a byte length that disagrees with the shape',
      rawFile({ w: { dtype: 'F32', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8)),
      /= 4 bytes, but data_offsets span 8/,
    ],
    [
      'offsets past the data',
      rawFile({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, new Uint8Array(4)),
      /lie outside the 4-byte data area/,
    ],
    [
      'overlapping tensors',
      rawFile(
        { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } },
        new Uint8Array(8),
      ),
      /"a" \[0, 8\] and "b" \[4, 8\] overlap/,
    ],
    ['non-string metadata', rawFile({ __metadata__: { n: 1 } }), /__metadata__\["n"\] must be a string/],
    [
      'a "__proto__" tensor',
      rawFile(null, new Uint8Array(4), '{"__proto__":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'),
      /"__proto__"/,
    ],
  ])('rejects %s with E_FORMAT naming the problem', (_, bytes, message) => {
    expect(() => parseSafetensors(bytes as Uint8Array)).toThrow(message);
    expect(() => parseSafetensors(bytes as Uint8Array)).toThrow(/E_FORMAT/);
  });

  it('serialize checks shapes and dtypes', () => {
    expect(() => serializeSafetensors({ w: { shape: [3], data: new Float32Array(2) } })).toThrow(/E_SHAPE/);
    expect(() => serializeSafetensors({}, undefined, 'F64' as never)).toThrow(/E_UNSUPPORTED/);
  });
});

/** Parsing either succeeds within 2× the input's size, or throws LoRAError E_FORMAT; nothing else. */
function expectFormatErrorOrBounded(bytes: Uint8Array): void {
  let parsed: ReturnType<typeof parseSafetensors>;
  try {
    parsed = parseSafetensors(bytes);
  } catch (err) {
    if (!(err instanceof LoRAError) || err.code !== 'E_FORMAT') throw err;
    return;
  }
  let allocated = 0;
  for (const t of Object.values(parsed.tensors)) if (t.data.buffer !== bytes.buffer) allocated += t.data.byteLength;
  expect(allocated).toBeLessThanOrEqual(2 * bytes.length);
}

const valid = (dtype: 'F32' | 'F16' | 'BF16') =>
  serializeSafetensors(
    {
      'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight': { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) },
      'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight': {
        shape: [4, 2],
        data: Float32Array.from([1, 0, 0, 1, 1, 1, -1, 2]),
      },
    },
    { format: 'pt' },
    dtype,
  );

const weirdValue = fc.oneof(
  fc.constantFrom(Number.NaN, -1, 0, 1, 2 ** 53, 2 ** 60, 1e308, -0, 0.5, 'F32', 'BF16', 'X', null, true),
  fc.array(fc.oneof(fc.integer({ min: -2, max: 2 ** 40 }), fc.double(), fc.constant(null)), { maxLength: 4 }),
  fc.string({ maxLength: 8 }),
);

describe('safetensors fuzzing (fast-check): only E_FORMAT, no hang, no allocation beyond 2× the input', () => {
  it('random bytes (4,000 buffers)', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), expectFormatErrorOrBounded), { numRuns: 4000 });
  });

  it('random bytes behind a valid length prefix and JSON-ish header (2,000 buffers)', () => {
    fc.assert(
      fc.property(fc.json({ maxDepth: 3 }), fc.uint8Array({ maxLength: 64 }), (json, data) =>
        expectFormatErrorOrBounded(rawFile(null, data, json)),
      ),
      { numRuns: 2000 },
    );
  });

  it('mutated valid files: truncation, byte flips, lying header lengths (4,000 buffers)', () => {
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ kind: fc.constant('length' as const), value: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }) }),
    );
    fc.assert(
      fc.property(
        fc.constantFrom('F32', 'F16', 'BF16' as const),
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        (dtype, mutations) => {
          let bytes = valid(dtype);
          for (const m of mutations) {
            if (m.kind === 'truncate') bytes = bytes.subarray(0, m.at % (bytes.length + 1));
            else if (m.kind === 'flip' && bytes.length > 0) bytes[m.at % bytes.length] = m.value;
            else if (m.kind === 'length' && bytes.length >= 8) new DataView(bytes.buffer, bytes.byteOffset).setBigUint64(0, m.value, true);
          }
          expectFormatErrorOrBounded(bytes);
        },
      ),
      { numRuns: 4000 },
    );
  });

  it('structured headers with hostile fields: NaN and huge shapes, overlapping offsets, wrong dtypes (3,000 headers)', () => {
    const entry = fc.record({ dtype: weirdValue, shape: weirdValue, data_offsets: weirdValue }, { requiredKeys: [] });
    fc.assert(
      fc.property(
        fc.dictionary(fc.string({ maxLength: 6 }), fc.oneof(entry, weirdValue), { maxKeys: 4 }),
        fc.nat({ max: 64 }),
        (header, size) => {
          // JSON.stringify turns NaN into null, so NaN shapes arrive as nulls: still rejected.
          expectFormatErrorOrBounded(rawFile(header, new Uint8Array(size)));
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('adapter configs and whole adapters: only LoRAError (E_FORMAT, or E_UNSUPPORTED for DoRA/bias/modules_to_save) (2,000 cases)', () => {
    const config = fc.oneof(
      fc.anything(),
      fc.json({ maxDepth: 2 }),
      fc.record(
        {
          r: weirdValue,
          lora_alpha: weirdValue,
          target_modules: fc.oneof(weirdValue, fc.array(fc.string({ maxLength: 5 }))),
          use_rslora: weirdValue,
          rank_pattern: fc.dictionary(fc.string({ maxLength: 5 }), weirdValue, { maxKeys: 3 }),
          alpha_pattern: fc.dictionary(fc.string({ maxLength: 5 }), weirdValue, { maxKeys: 3 }),
          bias: weirdValue,
          use_dora: weirdValue,
          modules_to_save: weirdValue,
        },
        { requiredKeys: [] },
      ),
    );
    fc.assert(
      fc.property(config, fc.boolean(), (c, withWeights) => {
        try {
          if (withWeights) loadPeftAdapter({ id: 'fuzz', config: c, safetensors: valid('F32') });
          else parsePeftConfig(c);
        } catch (err) {
          if (!(err instanceof LoRAError) || !['E_FORMAT', 'E_UNSUPPORTED'].includes(err.code)) throw err;
        }
      }),
      { numRuns: 2000 },
    );
  });
});
