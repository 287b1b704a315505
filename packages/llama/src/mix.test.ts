import { type AdapterModuleWeights, createAdapter, type LoRAAdapter, type MixTerm } from '@lora/core';
import { describe, expect, it } from 'vitest';
import { Engine } from './engine/engine.js';
import { CHECKPOINT_PRESETS } from './fixtures.js';
import { referenceLogits } from './reference.js';
import { Sequence } from './sequence.js';
import { loadSpec, rowError, testAdapters } from './test-support.js';

/**
 * A weighted mix as one adapter: the adapters' ranks stacked (PEFT `add_weighted_adapter` with
 * `combination_type="cat"`): A = [A_1; A_2], B = [w_1·s_1·B_1, w_2·s_2·B_2], scale 1, so
 * B·A = Σ w_k·s_k·B_k·A_k.
 */
function concatenated(adapters: readonly LoRAAdapter[], weights: readonly number[]): LoRAAdapter {
  const names = new Set(adapters.flatMap((a) => [...a.modules.keys()]));
  const modules = [...names].map((name): AdapterModuleWeights => {
    const parts = adapters.flatMap((a, k) => {
      const m = a.modules.get(name);
      return m === undefined ? [] : [{ m, w: weights[k] as number }];
    });
    const { kind, inFeatures, outFeatures } = (parts[0] as { m: AdapterModuleWeights }).m;
    const rank = parts.reduce((n, p) => n + p.m.rank, 0);
    const a = new Float32Array(rank * inFeatures);
    const b = new Float32Array(outFeatures * rank);
    let k0 = 0;
    for (const { m, w } of parts) {
      a.set(m.a, k0 * inFeatures);
      for (let o = 0; o < outFeatures; o++)
        for (let k = 0; k < m.rank; k++) b[o * rank + k0 + k] = w * m.scale * (m.b[o * m.rank + k] as number);
      k0 += m.rank;
    }
    return { name, kind, rank, scale: 1, a, b, inFeatures, outFeatures };
  });
  return createAdapter('concatenated', modules);
}

describe('adapter mixes in the model and the Engine', () => {
  it.each(['qwen2-bias', 'llama-tied'] as const)(
    '%s: a mix of two adapters (embedding and lm_head included) matches the float64 reference of their concatenation; a base row beside it stays the base',
    async (preset) => {
      const m = await loadSpec(CHECKPOINT_PRESETS[preset], 'out-in', 3);
      try {
        const { config, weights } = m.checkpoint;
        const [first, second] = testAdapters(config) as [LoRAAdapter, LoRAAdapter];
        for (const a of [first, second]) m.runtime.adapters.register(a);
        const mix: MixTerm[] = [
          { id: first.id, weight: 0.6 },
          { id: second.id, weight: -1.3 },
        ];
        const prompts = [Int32Array.of(5, 9, 2, 77, 31), Int32Array.of(8, 1, 40)];
        const seqs = prompts.map(() => new Sequence());
        m.runtime.adapters.setBatch(
          [mix, null],
          prompts.map((p) => p.length),
        );
        const logits = await m.model.forward(prompts.map((tokens, i) => ({ seq: seqs[i] as Sequence, tokens })));
        for (const s of seqs) s.dispose();
        const V = config.vocabSize;
        const mixed = referenceLogits(config, weights, prompts[0] as Int32Array, concatenated([first, second], [0.6, -1.3]));
        const base = referenceLogits(config, weights, prompts[1] as Int32Array);
        expect(rowError(logits.subarray(0, V), mixed[mixed.length - 1] as Float64Array)).toBeLessThan(1e-4);
        expect(rowError(logits.subarray(V, 2 * V), base[base.length - 1] as Float64Array)).toBeLessThan(1e-4);
        // The mix differs from either adapter alone, so the comparison means something.
        const alone = referenceLogits(config, weights, prompts[0] as Int32Array, first);
        expect(rowError(alone[alone.length - 1] as Float64Array, mixed[mixed.length - 1] as Float64Array)).toBeGreaterThan(1e-2);
      } finally {
        m.dispose();
      }
    },
  );

  it('the Engine serves mix requests beside plain ones, refuses bad mixes at add(), and reports the mix', async () => {
    const m = await loadSpec(CHECKPOINT_PRESETS['llama-untied'], 'out-in', 2);
    try {
      const [first, second, dora] = testAdapters(m.checkpoint.config) as [LoRAAdapter, LoRAAdapter, LoRAAdapter];
      for (const a of [first, second, dora]) m.runtime.adapters.register(a);
      const engine = new Engine({ model: m.model, maxNumSeqs: 4 });
      const mix = [
        { id: first.id, weight: 0.5 },
        { id: second.id, weight: 2 },
      ];
      const sampling = { temperature: 0, maxTokens: 4, ignoreEos: true };
      const prompt = [3, 14, 15, 92];
      const alone = await engine.add({ prompt, adapters: mix, sampling }).result;
      const together = await Promise.all([
        engine.add({ prompt, adapters: mix, sampling }).result,
        engine.add({ prompt: [7, 7, 7], adapter: first.id, sampling }).result,
        engine.add({ prompt: [1, 2], sampling }).result,
      ]);
      expect(together[0]?.tokenIds).toEqual(alone.tokenIds);
      expect(together[0]?.mix).toEqual(mix);
      expect(together[0]?.adapter).toBeNull();
      expect(() => engine.add({ prompt, adapters: mix, adapter: first.id })).toThrow(/E_CONFIG.*either adapter .* or adapters/);
      expect(() => engine.add({ prompt, adapters: [{ id: dora.id, weight: 1 }] })).toThrow(/E_UNSUPPORTED.*is DoRA/);
      expect(() => engine.add({ prompt, adapters: [{ id: 'nope', weight: 1 }] })).toThrow(/E_NOT_FOUND/);
      expect(() => engine.add({ prompt, adapters: [] })).toThrow(/E_SHAPE.*adapters is an empty mix/);
      await engine.close();
    } finally {
      m.dispose();
    }
  });
});
