import { loadPeftAdapter } from '@lora/core';
import { describe, expect, it } from 'vitest';
import { parseModelConfig } from './config.js';
import { adapterFiles } from './fixture-adapters.js';
import { CHECKPOINT_PRESETS, checkpointConfigJson } from './fixtures.js';
import { decodeLoRAShare, inherentShare, queueDecodeStep } from './lora-share.js';

// llama-untied: hidden 64, 4 query heads over 1 KV head of 16, intermediate 96, vocab 128, 2 layers.
const config = parseModelConfig(checkpointConfigJson(CHECKPOINT_PRESETS['llama-untied']), 'test');
const ALL = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
const adapter = (id: string, rank: number, targets = ALL) =>
  loadPeftAdapter({ id, ...adapterFiles(config, { id, rank, alpha: rank, targets }, 3) });

describe('what LoRA must cost in a decode step', () => {
  it('counts distinct adapters at their true rank against every weight and the KV cache, by hand', () => {
    // Per layer: q 64×64, k 64×16, v 64×16, o 64×64, gate/up 64×96, down 96×64; lm_head 64×128.
    const weights = 2 * (64 * 64 + 2 * 64 * 16 + 64 * 64 + 3 * 64 * 96) + 64 * 128;
    // r × (in + out) per module and layer.
    const perToken = (r: number) => 2 * r * (64 + 64 + 2 * (64 + 16) + (64 + 64) + 2 * (64 + 96) + (96 + 64));
    const [a, b] = [adapter('a', 4), adapter('b', 8)];
    // Four sequences with 7 cached tokens: a, b, a and one without an adapter.
    const share = decodeLoRAShare(config, { length: 7, adapters: [a, b, a, null] });
    const kvBytes = 4 * 2 * 2 * 1 * 16 * 8 * 4;
    expect(share.bytes).toBeCloseTo((4 * (perToken(4) + perToken(8))) / (4 * weights + kvBytes), 12);
    const attention = 2 * 2 * 2 * 4 * 16 * 8 * 4;
    expect(share.flops).toBeCloseTo((2 * (2 * perToken(4) + perToken(8))) / (2 * weights * 4 + attention), 12);
    // What it must cost: the larger of the two (a CPU decode step is bound by memory here).
    expect(inherentShare(share)).toBe(share.bytes);
    expect(inherentShare({ bytes: 0.01, flops: 0.03 })).toBe(0.03);
  });

  it('true ranks and targets count, not the padded rank; longer caches and shared adapters dilute it', () => {
    const r8 = adapter('r8', 8);
    const r8attn = adapter('r8-attn', 8, ['q_proj', 'v_proj']);
    const step = (length: number, adapters: Parameters<typeof decodeLoRAShare>[1]['adapters']) =>
      decodeLoRAShare(config, { length, adapters });
    expect(step(16, [r8attn]).bytes).toBeLessThan(step(16, [r8]).bytes);
    expect(step(1024, [r8, r8]).bytes).toBeLessThan(step(16, [r8, r8]).bytes);
    expect(step(16, [r8, r8]).bytes).toBeLessThan(step(16, [r8, adapter('other', 8)]).bytes);
    expect(step(16, [null, null])).toEqual({ bytes: 0, flops: 0 });
  });

  it("a queue's first decode step: its first maxNumSeqs requests at the median prompt length, on their adapters", () => {
    const a = adapter('a', 4);
    const requests = [
      { prompt: [1, 2, 3], adapter: 'a' },
      { prompt: [1], adapter: null },
      { prompt: [1, 2, 3, 4, 5], adapter: 'unknown' },
      { prompt: [1, 2, 3, 4, 5, 6, 7], adapter: 'a' },
    ];
    const step = queueDecodeStep(requests, (id) => (id === 'a' ? a : undefined), 3);
    expect(step).toEqual({ length: 3, adapters: [a, null, null] });
    expect(queueDecodeStep(requests, () => a).adapters).toHaveLength(4);
  });
});
