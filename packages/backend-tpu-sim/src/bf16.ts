/**
 * bfloat16 as the TPU stores it: the top 16 bits of a float32, rounded to nearest, ties to even.
 * Values are kept as float32 numbers whose low 16 mantissa bits are zero, so the simulator computes
 * on ordinary Float32Arrays and a bf16×bf16 product is exact in float32 (8 + 8 significant bits),
 * which is what makes "bf16 operands, f32 accumulation" emulation exact up to the adds.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 bit pattern → bf16 bit pattern (16 bits). NaN stays NaN (quieted), ±Inf stays ±Inf. */
export function bf16Bits(value: number): number {
  f32[0] = value;
  return roundBits(u32[0] as number) >>> 16;
}

/** `value` rounded to the nearest bf16, returned as a number (exact in float32). */
export function roundBf16(value: number): number {
  f32[0] = value;
  u32[0] = roundBits(u32[0] as number);
  return f32[0] as number;
}

/** bf16 bit pattern → its value. */
export function bf16FromBits(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0] as number;
}

/**
 * Rounds every element of `src` to bf16 into `dst` (which may be `src`). One pass over a Uint32
 * view: no per-element function calls, so multi-megabyte weight stacks round in milliseconds.
 */
export function roundBf16Array(src: Float32Array, dst: Float32Array = new Float32Array(src.length)): Float32Array {
  const s = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const d = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  for (let i = 0; i < s.length; i++) {
    const x = s[i] as number;
    if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) {
      d[i] = (x | 0x400000) & 0xffff0000; // NaN: quiet it, never round it into Inf
    } else {
      d[i] = (x + 0x7fff + ((x >>> 16) & 1)) & 0xffff0000;
    }
  }
  return dst;
}

/**
 * Round-to-nearest-even on the float32 bits: add 0x7fff plus the lowest kept bit, truncate. A carry
 * out of the mantissa bumps the exponent, which is exactly right (1.11…1 rounds up to 2.0, the
 * largest finite values round up to Inf); subnormals need no special case because the bf16 and
 * float32 exponents coincide. NaN is the one pattern the carry could turn into Inf, so it is
 * handled first: its quiet bit is set so the payload stays non-zero after truncation.
 */
function roundBits(x: number): number {
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return ((x | 0x400000) & 0xffff0000) >>> 0;
  return ((x + 0x7fff + ((x >>> 16) & 1)) & 0xffff0000) >>> 0;
}
