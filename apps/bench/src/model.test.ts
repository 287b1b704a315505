import { DEMO_PRESETS } from '@lora/llama/demo';
import { describe, expect, it } from 'vitest';
import { benchModel, decodeTokensPerSecond, tokensPerSecond } from './model.js';
import { modelTable } from './report.js';

describe('demo-model bench on the tiny preset', () => {
  it('serves the same schedule with and without LoRA and reports the overhead', async () => {
    const r = await benchModel(DEMO_PRESETS.tiny, { requests: 3, adapters: 2, rank: 4, maxNewTokens: 2, rounds: 1 });
    for (const s of [r.lora, r.base]) {
      // Step 1 prefills the three prompts (a first token each), step 2 decodes one token each.
      expect(s.steps).toBe(2);
      expect(s.decodeTokens).toBe(3);
      expect(s.prefillTokens).toBeGreaterThan(3 * 4 - 1);
      expect(tokensPerSecond(s)).toBeGreaterThan(0);
      expect(decodeTokensPerSecond(s)).toBeGreaterThan(0);
    }
    expect(r.lora.activations).toBe(0); // the warm-up pass already activated both adapters
    expect(r.base.activations).toBe(0);
    expect(r.preset).toBe('tiny');
    expect(Number.isFinite(r.overhead)).toBe(true);
    expect(r.overheadRange).toMatchObject({ rounds: 1, low: r.overheadRange.high });
    // Every request on one of the two rank-4 adapters: LoRA reads both, one token each per sequence.
    expect(r.mustCost.bytes).toBeGreaterThan(0);
    expect(r.mustCost.flops).toBeGreaterThan(0);
    expect(modelTable(r)).toMatch(/with LoRA .*\n.*without LoRA/s);
    expect(modelTable(r)).toMatch(/round by round .* over 1 rounds\)\. LoRA must cost \d+\.\d+ % of a decode step/);
  }, 60_000);

  it('mixes ranks over the adapters (--ranks): padded to the largest, must-cost counted at the true ranks', async () => {
    const even = await benchModel(DEMO_PRESETS.tiny, { requests: 2, adapters: 2, rank: 4, maxNewTokens: 1, rounds: 1 });
    const mixed = await benchModel(DEMO_PRESETS.tiny, { requests: 2, adapters: 2, rank: 4, ranks: [2, 4], maxNewTokens: 1, rounds: 1 });
    expect(mixed.rank).toBe(4);
    expect(mixed.ranks).toEqual([2, 4]);
    // One adapter of rank 2 instead of 4: three quarters of the LoRA bytes.
    expect(mixed.mustCost.bytes / even.mustCost.bytes).toBeCloseTo(0.75, 2);
    expect(modelTable(mixed)).toMatch(/2 distinct adapters, ranks 2\/4 on every linear module/);
  }, 60_000);
});
