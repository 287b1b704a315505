import { describe, expect, it } from 'vitest';
import { CHIPS } from './chips.js';
import { crossoverFrontier, loraStepSeconds, powersOfTwo } from './crossover.js';
import { LLAMA_3_1_8B } from './estimate.js';

describe('einsum vs Pallas crossover', () => {
  it('the einsum never gets cheaper with more slots, and does not care how many adapters a batch uses', () => {
    let last = 0;
    for (const n of powersOfTwo(64)) {
      const t = loraStepSeconds(LLAMA_3_1_8B, CHIPS.v6e, { preset: 'einsum' }, n, 1, 16, 64);
      expect(t).toBeGreaterThanOrEqual(last);
      last = t;
      const spread = loraStepSeconds(LLAMA_3_1_8B, CHIPS.v6e, { preset: 'einsum' }, n, Math.min(n, 64), 16, 64);
      expect(spread).toBe(t);
    }
  });

  it('the Pallas kernels pay for the adapters a batch uses: spreading a batch never makes them cheaper', () => {
    let last = 0;
    for (const d of powersOfTwo(64)) {
      const t = loraStepSeconds(LLAMA_3_1_8B, CHIPS.v6e, { preset: 'all-on' }, 64, d, 16, 64);
      expect(t, `distinct ${d}`).toBeGreaterThanOrEqual(last);
      last = t;
    }
  });

  it('frontier: the most distinct adapters at which Pallas is strictly faster, 0 when never', () => {
    const f = crossoverFrontier([
      { maxLoras: 8, distinct: 1, einsumSeconds: 1, pallasSeconds: 2 },
      { maxLoras: 8, distinct: 2, einsumSeconds: 1, pallasSeconds: 3 },
      { maxLoras: 64, distinct: 1, einsumSeconds: 5, pallasSeconds: 2 },
      { maxLoras: 64, distinct: 2, einsumSeconds: 5, pallasSeconds: 4 },
      { maxLoras: 64, distinct: 4, einsumSeconds: 5, pallasSeconds: 6 },
    ]);
    expect(f).toEqual([
      { maxLoras: 8, pallasWinsUpTo: 0, distinctMax: 2 },
      { maxLoras: 64, pallasWinsUpTo: 2, distinctMax: 4 },
    ]);
  });
});
