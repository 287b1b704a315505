import { describe, expect, it } from 'vitest';
import { resolveTpuSimOptions } from '../options.js';
import { bitLength, featureBlock, laneLayout, planTokens, tokenBlock } from './plan.js';

describe("vLLM PR 15655's static-shape rules", () => {
  it('rank padding and lanes: keep rank when rank·n ≥ 256, else 1 << bitLength(256 / n)', () => {
    expect(bitLength(28)).toBe(5);
    expect(bitLength(64)).toBe(7);
    // 8 adapters + zero slot: 16·9 < 256 → 1 << bitLength(28) = 32; 8 lanes; the 9th slot needs a second group.
    expect(laneLayout(16, 9)).toEqual({ rank: 32, lanes: 8, width: 256, groups: 2 });
    expect(laneLayout(64, 4)).toEqual({ rank: 64, lanes: 4, width: 256, groups: 1 }); // 64·4 = 256: kept
    expect(laneLayout(72, 3)).toEqual({ rank: 128, lanes: 2, width: 256, groups: 2 }); // 216 < 256 → 1 << bitLength(85)
    expect(laneLayout(72, 4)).toEqual({ rank: 72, lanes: 3, width: 256, groups: 2 }); // kept; floor(256/72) lanes
    expect(laneLayout(260, 2)).toEqual({ rank: 260, lanes: 1, width: 512, groups: 2 }); // wider than a tile
  });

  it('feature blocks: largest of 1024/512/256 dividing the 256-padded size', () => {
    expect(featureBlock(4096)).toEqual({ block: 1024, padded: 4096 });
    expect(featureBlock(14336)).toEqual({ block: 1024, padded: 14336 });
    expect(featureBlock(1300)).toEqual({ block: 512, padded: 1536 });
    expect(featureBlock(768)).toEqual({ block: 256, padded: 768 });
    expect(featureBlock(1)).toEqual({ block: 256, padded: 256 });
  });

  it('token blocks: 16 untuned, clamp(roundUp(T, 16), 16, 128) tuned; bucketing pads to the token bucket', () => {
    expect([1, 17, 100, 128, 5000].map((t) => tokenBlock(t, true))).toEqual([16, 32, 112, 128, 128]);
    expect(tokenBlock(5000, false)).toBe(16);
    const on = resolveTpuSimOptions({ preset: 'all-on' }).flags;
    const off = resolveTpuSimOptions({ preset: 'all-on', flags: { bucketing: false } }).flags;
    expect(planTokens(100, 128, on)).toEqual({ padded: 128, block: 128 });
    expect(planTokens(100, 128, off)).toEqual({ padded: 112, block: 112 });
    expect(planTokens(3000, 3000, on)).toEqual({ padded: 3072, block: 128 }); // a non-power-of-two maxNumTokens bucket
  });
});
