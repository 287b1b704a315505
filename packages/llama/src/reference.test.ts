import { describe, expect, it } from 'vitest';
import { buildCheckpoint, CHECKPOINT_PRESETS } from './fixtures.js';
import { mergeAdapter, referenceLogits } from './reference.js';
import { rowError, testAdapters } from './test-support.js';

describe('mergeAdapter', () => {
  it.each(['llama-tied', 'qwen2-bias', 'llama-untied'] as const)(
    '%s: the merged weights without LoRA give what the LoRA reference gives (embedding and lm_head included)',
    (preset) => {
      const { config, weights } = buildCheckpoint(CHECKPOINT_PRESETS[preset]);
      const tokens = Int32Array.of(5, 9, 2, 77, 31, 8);
      for (const adapter of testAdapters(config)) {
        const viaLoRA = referenceLogits(config, weights, tokens, adapter);
        const merged = mergeAdapter(config, weights, adapter);
        // A tied model comes back untied when the adapter touches embed_tokens or lm_head.
        expect(merged.config.tieWordEmbeddings).toBe(
          config.tieWordEmbeddings && !adapter.modules.has('lm_head') && !adapter.modules.has('model.embed_tokens'),
        );
        const viaMerge = referenceLogits(merged.config, merged.weights, tokens);
        const base = referenceLogits(config, weights, tokens);
        viaMerge.forEach((row, t) => {
          // The merged weights are rounded to float32 once: far below the 1e-4 promise.
          expect(rowError(row, viaLoRA[t] as Float64Array)).toBeLessThan(1e-5);
          // ...and the adapter does change the output, so the comparison means something.
          expect(rowError(base[t] as Float64Array, viaLoRA[t] as Float64Array)).toBeGreaterThan(1e-2);
        });
        // The input map is left as it was.
        expect(merged.weights).not.toBe(weights);
      }
    },
  );

  it('refuses an adapter for modules the weights do not have', () => {
    const { config, weights } = buildCheckpoint(CHECKPOINT_PRESETS['llama-untied']);
    const [adapter] = testAdapters(config);
    const fewer = new Map(weights);
    fewer.delete('model.layers.0.self_attn.q_proj.weight');
    expect(() => mergeAdapter(config, fewer, adapter as never)).toThrow(
      /E_SHAPE.*targets model\.layers\.0\.self_attn\.q_proj, which has no model\.layers\.0\.self_attn\.q_proj\.weight/,
    );
  });
});
