import { describe, expect, it } from 'vitest';
import { bf16Bits, bf16FromBits, roundBf16, roundBf16Array } from './bf16.js';

const u32 = new Uint32Array(1);
const f32 = new Float32Array(u32.buffer);
const fromBits = (bits: number): number => {
  u32[0] = bits;
  return f32[0] as number;
};

// [float32 bits, expected bf16 bits, why]
const CASES: Array<[number, number, string]> = [
  [0x3f800000, 0x3f80, '1.0 is exact'],
  [0x3f807fff, 0x3f80, 'just below half an ulp rounds down'],
  [0x3f808000, 0x3f80, 'tie rounds to the even mantissa (down)'],
  [0x3f808001, 0x3f81, 'just above half an ulp rounds up'],
  [0x3f818000, 0x3f82, 'tie rounds to the even mantissa (up)'],
  [0xbf808000, 0xbf80, 'negative tie to even'],
  [0xbf818000, 0xbf82, 'negative tie to even (up in magnitude)'],
  [0x3fffffff, 0x4000, 'mantissa carry bumps the exponent: 1.99999988 → 2'],
  [0x80000000, 0x8000, '-0 keeps its sign'],
  [0x00000000, 0x0000, '+0'],
  [0x00000001, 0x0000, 'smallest float32 subnormal underflows to +0'],
  [0x80000001, 0x8000, 'negative subnormal underflows to -0'],
  [0x00010000, 0x0001, 'smallest bf16 subnormal is exact'],
  [0x00008000, 0x0000, 'subnormal tie to even (0)'],
  [0x00018000, 0x0002, 'subnormal tie to even (up)'],
  [0x007fffff, 0x0080, 'largest subnormal rounds up to the smallest normal'],
  [0x7f7f7fff, 0x7f7f, 'largest finite bf16 stays finite'],
  [0x7f7f8000, 0x7f80, 'tie above the largest finite bf16 overflows to +Inf'],
  [0x7f7fffff, 0x7f80, 'largest float32 overflows to +Inf'],
  [0xff7fffff, 0xff80, 'most negative float32 overflows to -Inf'],
  [0x7f800000, 0x7f80, '+Inf'],
  [0xff800000, 0xff80, '-Inf'],
  [0x7fc00000, 0x7fc0, 'quiet NaN'],
  [0x7f800001, 0x7fc0, 'NaN with only low payload bits stays NaN (must not round to Inf)'],
  [0x7fffffff, 0x7fff, 'NaN whose rounding would carry stays NaN'],
  [0xffffffff, 0xffff, 'negative NaN stays NaN'],
];

describe('bf16 round-to-nearest-even', () => {
  for (const [bits, expected, why] of CASES) {
    it(`0x${bits.toString(16).padStart(8, '0')} → 0x${expected.toString(16).padStart(4, '0')}: ${why}`, () => {
      const value = fromBits(bits);
      expect(bf16Bits(value)).toBe(expected);
      const rounded = roundBf16(value);
      if (Number.isNaN(value)) expect(Number.isNaN(rounded)).toBe(true);
      else expect(Object.is(rounded, bf16FromBits(expected))).toBe(true);
      // The bulk path must agree bit for bit with the scalar path.
      const out = roundBf16Array(Float32Array.of(value));
      expect(new Uint32Array(out.buffer)[0]! >>> 16).toBe(expected);
    });
  }

  it('rounds 200 000 random bit patterns to the nearer bf16 neighbour (ties to even), checked in float64 arithmetic', () => {
    // An oracle independent of the bit trick under test: the two bf16 values around v, compared by
    // their distance to v in float64; past the largest bf16 the upper neighbour counts as 2^128.
    const f = new Float32Array(1);
    const u = new Uint32Array(f.buffer);
    const floatOfBits = (b: number) => {
      u[0] = b;
      return f[0]!;
    };
    const nearest = (x: number): number => {
      if ((x & 0x7f800000) === 0x7f800000) return (x & 0x7fffff) === 0 ? x : Number.NaN; // Inf exact; NaN apart
      const v = floatOfBits(x);
      const lo = (x & 0xffff0000) >>> 0;
      if (lo === x) return lo;
      const hi = (lo + 0x10000) >>> 0;
      const hiIsInf = (hi & 0x7f800000) === 0x7f800000;
      const dLo = Math.abs(v - floatOfBits(lo));
      const dHi = Math.abs((hiIsInf ? Math.sign(v) * 2 ** 128 : floatOfBits(hi)) - v);
      if (dLo !== dHi) return dLo < dHi ? lo : hi;
      return (lo & 0x10000) === 0 ? lo : hi;
    };
    let state = 12345;
    const n = 200_000;
    const bits = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      bits[i] = state;
    }
    const values = new Float32Array(bits.buffer.slice(0));
    const rounded = new Uint32Array(roundBf16Array(values).buffer);
    for (let i = 0; i < n; i++) {
      const want = nearest(bits[i]!);
      const got = rounded[i]!;
      const ok = Number.isNaN(want) ? Number.isNaN(floatOfBits(got)) && (got & 0xffff) === 0 : got === want;
      if (!ok || bf16Bits(values[i]!) !== got >>> 16) {
        expect.fail(`0x${bits[i]!.toString(16)}: got 0x${got.toString(16)}, nearest is 0x${want.toString(16)}`);
      }
    }
    roundBf16Array(values, values);
    expect(new Uint32Array(values.buffer)).toEqual(rounded);
  });

  it('relative rounding error of normal numbers is at most 2^-8 (7 stored mantissa bits)', () => {
    for (const v of [1 / 3, Math.PI, -1e-30, 6.02e23, 1.00390625]) {
      expect(Math.abs(roundBf16(v) - v) / Math.abs(v)).toBeLessThanOrEqual(2 ** -8);
    }
  });
});
