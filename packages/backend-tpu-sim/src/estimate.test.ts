import { computeMapping } from '@lora/core/backend';
import { describe, expect, it } from 'vitest';
import { CHIPS } from './chips.js';
import { estimateBaseStep, estimateLoRAStep, type LlamaShape, loraModules } from './estimate.js';

const tiny: LlamaShape = { name: 'tiny', hidden: 4, q: 4, kv: 2, intermediate: 6, layers: 3, vocab: 10, tp: 1 };

describe('whole-model estimates', () => {
  it('base step: bf16 weights and KV cache read once, linear + lm_head + attention FLOPs (hand-computed)', () => {
    // Per layer: q/k/v 4·(4+2+2) + o 4·4 + gate/up/down 3·4·6 = 32 + 16 + 72 = 120 weights; × 3 layers = 360.
    // Weights read: (360 + embed and lm_head 2·10·4) · 2 bytes = 880; KV: K and V · 5 cached tokens · kv 2 · 3 layers · 2 bytes = 120.
    // FLOPs: 2 · 2 tokens · 360 + 2 · 1 sampled · 10 · 4 + 4 · 5 cached · q 4 · 3 layers = 1440 + 80 + 240.
    const s = estimateBaseStep(tiny, CHIPS.v6e, { tokens: 2, sampled: 1, contextTokens: 5 });
    expect(s.bytes).toBe(1000);
    expect(s.flops).toBe(1760);
    expect(s.seconds).toBe(Math.max(1760 / CHIPS.v6e.peakBf16Flops, 1000 / CHIPS.v6e.hbmBytesPerSecond));
    expect(estimateBaseStep(tiny, CHIPS.v6e, { tokens: 2, sampled: 1 }).bytes).toBe(880);
  });

  it('tensor parallelism shards q/kv/intermediate across chips; LoRA cost scales with the layers', () => {
    expect(loraModules({ ...tiny, q: 8, kv: 4, intermediate: 12, tp: 2 }).map((m) => [m.input, m.slices])).toEqual([
      [4, [4, 2, 2]],
      [4, [4]],
      [4, [6, 6]],
      [6, [4]],
    ]);
    const meta = computeMapping(Int32Array.of(0, 1, 1, 0), { maxLoras: 2, maxNumTokens: 16 });
    const one = estimateLoRAStep({ ...tiny, layers: 1 }, { preset: 'all-on' }, meta, { adapters: 2, rank: 4 });
    const three = estimateLoRAStep(tiny, { preset: 'all-on' }, meta, { adapters: 2, rank: 4 });
    expect(one.seconds).toBeGreaterThan(0);
    expect(three.seconds).toBeCloseTo(3 * one.seconds, 15);
    expect(three.hbmBytes).toBe(3 * one.hbmBytes);
    // Rank 4 on 2 adapters of 4 tokens: the MXU does far more than the useful 2·4·(in + out) FLOPs (padding to the tile).
    expect(three.mxuFlops).toBeGreaterThan(three.usefulFlops);
  });
});
