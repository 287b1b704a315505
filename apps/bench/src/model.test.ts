import { PRESETS } from '@lora/demo/serving';
import { describe, expect, it } from 'vitest';
import { benchModel, decodeTokensPerSecond, tokensPerSecond } from './model.js';
import { modelTable } from './report.js';

describe('demo-model bench on the tiny preset', () => {
  it('serves the same schedule with and without LoRA and reports the overhead', async () => {
    const r = await benchModel(PRESETS.tiny!, { requests: 3, adapters: 2, rank: 4, maxNewTokens: 2, rounds: 1 });
    for (const s of [r.lora, r.base]) {
      expect(s.decodeTokens).toBe(3);
      expect(s.prefillTokens).toBeGreaterThan(0);
      expect(tokensPerSecond(s)).toBeGreaterThan(0);
      expect(decodeTokensPerSecond(s)).toBeGreaterThan(0);
    }
    expect(r.lora.steps).toBe(r.base.steps);
    expect(Number.isFinite(r.overhead)).toBe(true);
    expect(modelTable(r)).toMatch(/with LoRA .*\n.*without LoRA/s);
  }, 60_000);
});
