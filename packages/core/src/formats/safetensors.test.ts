import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadPeftAdapter } from '../adapters/peft.js';
import { parsePeftConfig } from '../adapters/peft-config.js';
import { LoRAError } from '../errors.js';
import { bf16BytesToFloats, bf16ToFloat, floatToBf16, floatToHalf, halfBytesToFloats, halfToFloat } from './half.js';
import { parseSafetensors, parseSafetensorsLayout, readSafetensorsHeaderLength, serializeSafetensors } from './safetensors.js';

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

describe('array decoders (what parseSafetensors uses for F16 and BF16)', () => {
  // Every 16-bit pattern, little-endian, at an even and at an odd byte offset (the odd one takes the byte-by-byte path).
  const patterns = Uint16Array.from({ length: 0x10000 }, (_, h) => h);
  const bytes = new Uint8Array(patterns.buffer);
  const odd = new Uint8Array(bytes.length + 1);
  odd.set(bytes, 1);
  const same = (a: number, b: number) => (Number.isNaN(a) ? Number.isNaN(b) : Object.is(a, b));

  it.each([
    ['bf16BytesToFloats', bf16BytesToFloats, bf16ToFloat],
    ['halfBytesToFloats', halfBytesToFloats, halfToFloat],
  ] as const)('%s equals the scalar conversion for every value, aligned or not', (_, decode, scalar) => {
    for (const input of [bytes, odd.subarray(1)]) {
      const out = new Float32Array(0x10000);
      decode(input, out);
      const wrong = out.findIndex((v, h) => !same(v, scalar(h)));
      expect(wrong, `0x${wrong.toString(16)}`).toBe(-1);
    }
  });

  it('bf16BytesToFloats keeps NaN payloads bit for bit', () => {
    const out = new Float32Array(1);
    bf16BytesToFloats(Uint8Array.of(0x01, 0x7f), out); // 0x7f01: a signalling NaN's top half
    expect(new Uint32Array(out.buffer)[0]).toBe(0x7f010000);
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

  it.each(['F32', 'F16', 'BF16'] as const)('decodes %s into the arrays `output` hands out, and refuses a wrong one', (dtype) => {
    const bytes = serializeSafetensors(tensors, {}, dtype);
    const mine = new Float32Array(6);
    const asked: unknown[] = [];
    const parsed = parseSafetensors(bytes, {
      output: (name, t) => {
        asked.push([name, t]);
        return name === 'a.weight' ? mine : undefined;
      },
    });
    expect(asked).toEqual([
      ['a.weight', { dtype, shape: [2, 3], length: 6 }],
      ['empty', { dtype, shape: [0, 4], length: 0 }],
    ]);
    expect(parsed.tensors['a.weight']!.data).toBe(mine);
    expect(Array.from(mine)).toEqual(Array.from(parseSafetensors(bytes).tensors['a.weight']!.data));
    expect(() => parseSafetensors(bytes, { output: () => new Float32Array(5) })).toThrow(
      expect.objectContaining({ code: 'E_CONFIG', message: expect.stringMatching(/Float32Array of 6 elements/) }),
    );
  });

  it("parseSafetensorsLayout validates from the header bytes alone, with the whole file's size", () => {
    const bytes = serializeSafetensors(tensors, { format: 'pt' }, 'BF16');
    const n = readSafetensorsHeaderLength(bytes.subarray(0, 8), bytes.length);
    const layout = parseSafetensorsLayout(bytes.slice(0, 8 + n), bytes.length);
    expect(layout.dataStart).toBe(8 + n);
    expect(layout.metadata).toEqual({ format: 'pt' });
    expect(layout.entries.map((e) => [e.name, e.dtype, e.shape, e.end - e.begin])).toEqual([
      ['a.weight', 'BF16', [2, 3], 12],
      ['empty', 'BF16', [0, 4], 0],
    ]);
    // The same checks as a whole file: a size that the tensors do not tile, a header past the end.
    expect(() => parseSafetensorsLayout(bytes.slice(0, 8 + n), bytes.length + 2)).toThrow(/2 trailing/);
    expect(() => readSafetensorsHeaderLength(bytes.subarray(0, 8), n + 7)).toThrow(/runs past the end of the \d+-byte file/);
    expect(() => readSafetensorsHeaderLength(bytes.subarray(0, 5), 5)).toThrow(/file is 5 bytes; a header length needs 8/);
    expect(() => parseSafetensorsLayout(bytes.slice(0, 8 + n - 1), bytes.length)).toThrow(
      expect.objectContaining({ code: 'E_CONFIG', message: expect.stringMatching(/needs the file's first/) }),
    );
  });

  it('reads F64', () => {
    const data = new Uint8Array(16);
    new DataView(data.buffer).setFloat64(0, Math.PI, true);
    new DataView(data.buffer).setFloat64(8, -0.5, true);
    const parsed = parseSafetensors(rawFile({ x: { dtype: 'F64', shape: [2], data_offsets: [0, 16] } }, data));
    expect(Array.from(parsed.tensors.x!.data)).toEqual([Math.fround(Math.PI), -0.5]);
  });

  it('serialize checks shapes and dtypes', () => {
    expect(() => serializeSafetensors({ w: { shape: [3], data: new Float32Array(2) } })).toThrow(/E_SHAPE/);
    expect(() => serializeSafetensors({}, undefined, 'F64' as never)).toThrow(/E_UNSUPPORTED/);
    expect(() => serializeSafetensors({ __metadata__: { shape: [0], data: new Float32Array(0) } })).toThrow(/reserves it/);
    const loneSurrogate = String.fromCharCode(0x61, 0xd800);
    expect(() => serializeSafetensors({ [loneSurrogate]: { shape: [0], data: new Float32Array(0) } })).toThrow(/lone surrogate/);
    expect(() => serializeSafetensors({}, { n: 1 as never })).toThrow(/must be a string/);
  });

  it('never writes a file that its own parser refuses (fast-check, 500 files)', () => {
    const name = fc.oneof(fc.string({ unit: 'binary', maxLength: 12 }), fc.constantFrom('__proto__', '', 'constructor', 'a.b'));
    const tensor = fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 3 }).chain((shape) =>
      fc.record({
        shape: fc.constant(shape),
        data: fc.float32Array({ minLength: shape.reduce((a, b) => a * b, 1), maxLength: shape.reduce((a, b) => a * b, 1) }),
      }),
    );
    fc.assert(
      fc.property(
        fc.dictionary(name, tensor, { maxKeys: 5 }),
        fc.option(fc.dictionary(name, fc.string({ unit: 'binary', maxLength: 8 }), { maxKeys: 3 }), { nil: undefined }),
        fc.constantFrom('F32', 'F16', 'BF16' as const),
        (tensors, metadata, dtype) => {
          let bytes: Uint8Array;
          try {
            bytes = serializeSafetensors(tensors, metadata, dtype);
          } catch (err) {
            expect(err).toBeInstanceOf(LoRAError);
            return;
          }
          const parsed = parseSafetensors(bytes);
          expect(Object.keys(parsed.tensors).sort()).toEqual(Object.keys(tensors).sort());
          for (const [n, t] of Object.entries(tensors)) expect(parsed.tensors[n]?.shape).toEqual(t.shape);
          expect(parsed.metadata).toEqual(metadata ?? {});
        },
      ),
      { numRuns: 500 },
    );
  });
});

/**
 * The format's reference implementation is the judge: huggingface/safetensors
 * `safetensors/src/tensor.rs` (`SafeTensors::read_metadata`, `Metadata::validate`, serde's
 * `HashMetadata` / `TensorInfo`). Each row is one of its rules; the error it names is in the row.
 */
describe('safetensors: the reference implementation rules (table)', () => {
  const enc = (text: string) => new TextEncoder().encode(text);
  /** A file from raw header text (or bytes) and data bytes, with a correct length prefix. */
  const file = (header: string | Uint8Array, data = 0): Uint8Array => {
    const h = typeof header === 'string' ? enc(header) : header;
    const out = new Uint8Array(8 + h.length + data);
    new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
    out.set(h, 8);
    return out;
  };
  const f32 = (offsets: string, shape = '[1]') => `{"dtype":"F32","shape":${shape},"data_offsets":${offsets}}`;
  const withLength = (n: bigint, size = 16) => {
    const out = new Uint8Array(size);
    new DataView(out.buffer).setBigUint64(0, n, true);
    return out;
  };

  const refused: Array<[string, string, Uint8Array, RegExp]> = [
    ['HeaderTooSmall', 'a file shorter than 8 bytes', new Uint8Array(3), /needs 8/],
    ['HeaderTooLarge', 'a header length over 100,000,000', withLength(100_000_001n), /exceeds the format's 100000000-byte limit/],
    ['HeaderTooLarge', 'a header length of 2^60', withLength(2n ** 60n), /exceeds/],
    ['InvalidHeaderLength', 'a header length past the end of the file', withLength(9n), /runs past the end of the 16-byte file/],
    ['InvalidHeader', 'a header that is not UTF-8', file(Uint8Array.of(0x7b, 0xff, 0x7d)), /not valid UTF-8/],
    ['InvalidHeaderDeserialization', 'a header that is not JSON', file('{"a": '), /expected tensor "a" to be an object/],
    ['InvalidHeaderDeserialization', 'a JSON array header', file('[]'), /start with "\{"/],
    ['InvalidHeaderDeserialization', 'a byte-order mark before "{"', file('\ufeff{}'), /start with "\{"/],
    ['InvalidHeaderDeserialization', 'a trailing comma', file(`{"a":${f32('[0,4]')},}`, 4), /expected a string/],
    ['InvalidHeaderDeserialization', 'text after the header object', file('{} x'), /nothing but whitespace/],
    [
      'InvalidHeaderDeserialization',
      'a float offset (4.0)',
      file(`{"a":${f32('[0,4.0]')}}`, 4),
      /non-negative integers \(no sign, fraction/,
    ],
    [
      'InvalidHeaderDeserialization',
      'a float dimension (1.0)',
      file(`{"a":${f32('[0,4]', '[1.0]')}}`, 4),
      /shape to hold non-negative integers/,
    ],
    ['InvalidHeaderDeserialization', 'an exponent (1e0)', file(`{"a":${f32('[0,4]', '[1e0]')}}`, 4), /shape to hold non-negative/],
    ['InvalidHeaderDeserialization', 'a negative dimension', file(`{"a":${f32('[0,4]', '[-1]')}}`, 4), /shape to hold non-negative/],
    ['InvalidHeaderDeserialization', 'a NaN dimension', file(`{"a":${f32('[0,4]', '[NaN]')}}`, 4), /shape to hold non-negative/],
    [
      'InvalidHeaderDeserialization',
      'an unknown dtype',
      file('{"a":{"dtype":"X9","shape":[1],"data_offsets":[0,1]}}', 1),
      /dtype "X9" is not a safetensors dtype/,
    ],
    ['InvalidHeaderDeserialization', 'a missing field', file('{"a":{"dtype":"F32","shape":[1]}}', 4), /to have data_offsets/],
    ['InvalidHeaderDeserialization', 'three data_offsets', file(`{"a":${f32('[0,4,4]')}}`, 4), /data_offsets to be \[begin, end\]/],
    [
      'InvalidHeaderDeserialization',
      'a duplicate field in a tensor',
      file('{"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}', 4),
      /"dtype" twice/,
    ],
    ['InvalidHeaderDeserialization', 'non-string metadata', file('{"__metadata__":{"n":1}}'), /__metadata__\["n"\] to be a string/],
    ['InvalidHeaderDeserialization', 'a lone surrogate escape in a name', file(`{"a\\ud800":${f32('[0,4]')}}`, 4), /low surrogate/],
    [
      'InvalidHeaderDeserialization',
      "unknown fields nested past serde_json's limit of 128",
      file(`{"a":{"x":${'['.repeat(200)}${']'.repeat(200)},"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 4),
      /nested at most 128 deep/,
    ],
    [
      '(stricter: serde keeps the last)',
      'a duplicate tensor name',
      file(`{"a":${f32('[0,4]')},"a":${f32('[4,8]')}}`, 8),
      /the key "a" twice/,
    ],
    ['InvalidOffset', 'a hole before the first tensor', file(`{"a":${f32('[4,8]')}}`, 8), /leave a hole at bytes \[0, 4\)/],
    ['InvalidOffset', 'a hole between tensors', file(`{"a":${f32('[0,4]')},"b":${f32('[8,12]')}}`, 12), /"b".*hole at bytes \[4, 8\)/],
    ['InvalidOffset', 'overlapping tensors', file(`{"a":${f32('[0,8]', '[2]')},"b":${f32('[4,8]')}}`, 8), /overlap the previous tensor/],
    ['InvalidOffset', 'offsets that end before they begin', file(`{"a":${f32('[4,0]', '[0]')}}`), /hole|end before/],
    ['MetadataIncompleteBuffer', 'bytes after the last tensor', file(`{"a":${f32('[0,4]')}}`, 5), /1 trailing/],
    ['MetadataIncompleteBuffer', 'data shorter than the offsets', file(`{"a":${f32('[0,8]', '[2]')}}`, 4), /end at byte 8 .* 4 data bytes/],
    [
      'TensorInvalidInfo',
      'a byte span that disagrees with the shape',
      file(`{"a":${f32('[0,8]')}}`, 8),
      /is 4 bytes, but data_offsets span 8/,
    ],
    [
      'ValidationOverflow',
      'a shape whose element count overflows',
      file(`{"a":${f32('[0,4]', '[4503599627370496,4503599627370496,4503599627370496]')}}`, 4),
      /overflows/,
    ],
    [
      'MisalignedSlice',
      'F4 data that is not a whole number of bytes',
      file('{"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}', 2),
      /not a whole number of bytes/,
    ],
  ];
  it.each(refused)('refuses (%s) %s with E_FORMAT', (_, __, bytes, message) => {
    expect(() => parseSafetensors(bytes)).toThrow(message);
    expect(() => parseSafetensors(bytes)).toThrow(/E_FORMAT/);
  });

  const accepted: Array<[string, Uint8Array, string[]]> = [
    ['an empty header {}', file('{}'), []],
    ['a header padded with trailing whitespace', file('{}\r \t\n'), []],
    ['a header padded with leading whitespace', file('\t\n{}\r '), []],
    ['a zero-size tensor [2, 0]', file(`{"a":${f32('[0,0]', '[2,0]')}}`), ['a']],
    [
      'a zero-size tensor [0, 2] between two others',
      file(`{"a":${f32('[0,4]')},"z":${f32('[4,4]', '[0,2]')},"b":${f32('[4,8]')}}`, 8),
      ['a', 'b', 'z'],
    ],
    ['tensors listed out of offset order', file(`{"b":${f32('[4,8]')},"a":${f32('[0,4]')}}`, 8), ['a', 'b']],
    [
      'unknown fields in a tensor entry',
      file(`{"a":{"dtype":"F32","extra":{"x":[1,2.5,null]},"shape":[1],"data_offsets":[0,4]}}`, 4),
      ['a'],
    ],
    ['__metadata__ null', file(`{"__metadata__":null,"a":${f32('[0,4]')}}`, 4), ['a']],
    ['a tensor named "__proto__"', file(`{"__proto__":${f32('[0,4]')}}`, 4), ['__proto__']],
    ['escaped names', file(`{"\\u00e9\\n\\ud83d\\ude00":${f32('[0,4]')}}`, 4), ['é\n😀']],
    ['spaces inside the header', file(` { "a" : { "dtype" : "F32" , "shape" : [ 1 ] , "data_offsets" : [ 0 , 4 ] } } `, 4), ['a']],
  ];
  it.each(accepted)('accepts %s', (_, bytes, names) => {
    const parsed = parseSafetensors(bytes);
    expect(Object.keys(parsed.tensors).sort()).toEqual(names);
    expect(Object.getPrototypeOf(parsed.tensors)).toBe(Object.prototype);
  });

  it('accepts a valid file with a dtype it does not decode, then refuses that tensor with E_UNSUPPORTED (not E_FORMAT)', () => {
    const bytes = file('{"a":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}}', 8);
    expect(() => parseSafetensors(bytes)).toThrow(/E_UNSUPPORTED.*"a" is I32/);
  });

  it('reads an ArrayBuffer (what fetch().arrayBuffer() gives) like a Uint8Array', () => {
    const bytes = serializeSafetensors({ w: { shape: [2], data: Float32Array.of(1, 2) } });
    const copy = bytes.slice().buffer;
    expect(Array.from(parseSafetensors(copy).tensors.w!.data)).toEqual([1, 2]);
  });
});

/** Parsing either succeeds within 2× the input's size, or throws LoRAError E_FORMAT (E_UNSUPPORTED: a valid file of integers); nothing else. */
function expectFormatErrorOrBounded(bytes: Uint8Array): void {
  let parsed: ReturnType<typeof parseSafetensors>;
  try {
    parsed = parseSafetensors(bytes);
  } catch (err) {
    if (!(err instanceof LoRAError) || !['E_FORMAT', 'E_UNSUPPORTED'].includes(err.code)) throw err;
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

describe('safetensors fuzzing (fast-check): only E_FORMAT / E_UNSUPPORTED, no hang, no allocation beyond 2× the input', () => {
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
