import { roundUp } from '@lora/core/backend';
import type { TpuSimFlags } from '../options.js';

/**
 * Static shapes of one kernel call: padded sizes, block sizes and the lane packing, chosen by the
 * rules of vLLM PR 15655. Everything here is part of the compile signature, so it depends only on shapes
 * (and the token bucket), never on which slot a token uses.
 */

/** Lane tile: vLLM PR 15655 packs adapters into 256-wide MXU tiles (v6e's MXU side). */
const LANE_TILE = 256;
/** Zero-padding granularity of feature dimensions with tuned blocks. */
const FEATURE_TILE = 256;

/** How vLLM PR 15655 packs adapters side by side in 256-wide MXU tiles (the `laning` flag): what {@link laneLayout} returns. */
export interface Lanes {
  /** Rank after vLLM PR 15655's padding rule. */
  readonly rank: number;
  /** Adapters side by side in one tile. */
  readonly lanes: number;
  /** Width of one packed group (≥ lanes × rank, a multiple of 256). */
  readonly width: number;
  /** Groups needed for all `slots` adapters (zero slot included). */
  readonly groups: number;
}

/** Bit length of a non-negative integer (Python's int.bit_length). */
export const bitLength = (n: number): number => (n <= 0 ? 0 : Math.floor(Math.log2(n)) + 1);

/**
 * vLLM PR 15655's rank padding with n = maxLoras + 1 slots: keep the rank when rank·n ≥ 256, else pad it
 * to `1 << bitLength(256 / n)`; then `lanes = 256 / rank` adapters share a tile. (The issue writes
 * ceil(256/rank); for ranks that do not divide 256 that overflows the tile, so this takes the floor.)
 */
export function laneLayout(rank: number, slots: number): Lanes {
  const padded = rank * slots >= LANE_TILE ? rank : 1 << bitLength(Math.floor(LANE_TILE / slots));
  const lanes = Math.max(1, Math.floor(LANE_TILE / padded));
  return { rank: padded, lanes, width: roundUp(lanes * padded, LANE_TILE), groups: Math.ceil(slots / lanes) };
}

/** Largest of {1024, 512, 256} dividing `n` rounded up to 256: tuned feature blocks. */
export function featureBlock(n: number): { block: number; padded: number } {
  const padded = roundUp(Math.max(n, 1), FEATURE_TILE);
  const block = [1024, 512, 256].find((b) => padded % b === 0) as number;
  return { block, padded };
}

/** Token block: the first kernel's 16, or the tuned `clamp(roundUp(T, 16), 16, 128)`. */
export function tokenBlock(tokens: number, tuned: boolean): number {
  return tuned ? Math.min(128, Math.max(16, roundUp(tokens, 16))) : 16;
}

export interface TokenPlan {
  /** Tokens the program is compiled for (a multiple of `block`). */
  readonly padded: number;
  readonly block: number;
}

/**
 * With bucketing the program sees core's token bucket (a power of two, so a serving loop compiles
 * one program per bucket); without it, only the next multiple of the token block.
 */
export function planTokens(numTokens: number, tokenBucket: number, flags: Readonly<TpuSimFlags>): TokenPlan {
  const basis = flags.bucketing ? Math.max(tokenBucket, numTokens) : numTokens;
  const block = tokenBlock(basis, flags.blockTuning);
  return { padded: roundUp(basis, block), block };
}

/** Block and padded size of one non-token dimension (output or contraction). */
export interface DimPlan {
  readonly padded: number;
  readonly block: number;
}

/** The first kernel: 128-wide blocks everywhere. */
export const untunedDim = (n: number): DimPlan => ({ padded: roundUp(Math.max(n, 1), 128), block: 128 });
/** Tuned 256-wide lora (rank) blocks. */
export const rankDim = (n: number): DimPlan => ({ padded: roundUp(Math.max(n, 1), 256), block: 256 });
