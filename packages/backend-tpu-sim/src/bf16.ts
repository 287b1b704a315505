import { bf16ToFloat, floatToBf16, roundToBf16Array } from '@lora/core';

/**
 * bfloat16 as the TPU stores it: the top 16 bits of a float32, rounded to nearest, ties to even
 * (core's `floatToBf16`, the same rounding the checkpoint loader uses). Values are kept as float32
 * numbers whose low 16 mantissa bits are zero, so the simulator computes on ordinary Float32Arrays
 * and a bf16×bf16 product is exact in float32 (8 + 8 significant bits), which is what makes "bf16
 * operands, f32 accumulation" emulation exact up to the adds.
 */

/** float32 → bf16 bit pattern (16 bits). NaN stays NaN (quieted), ±Inf stays ±Inf. */
export const bf16Bits = (value: number): number => floatToBf16(value);

/** `value` rounded to the nearest bf16, returned as a number (exact in float32). */
export const roundBf16 = (value: number): number => bf16ToFloat(floatToBf16(value));

/** bf16 bit pattern → its value. */
export const bf16FromBits = (bits: number): number => bf16ToFloat(bits & 0xffff);

/** Every element of `src` rounded to bf16 into `dst` (which may be `src`). */
export const roundBf16Array = (src: Float32Array, dst?: Float32Array): Float32Array => roundToBf16Array(src, dst);
