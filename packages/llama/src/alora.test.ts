import { type LoRAAdapter, loadPeftAdapter } from '@lora/core';
import { describe, expect, it } from 'vitest';
import { Engine } from './engine/engine.js';
import { adapterFiles } from './fixture-adapters.js';
import { CHECKPOINT_PRESETS } from './fixtures.js';
import { referenceLogits } from './reference.js';
import { Sequence } from './sequence.js';
import { loadSpec, rowError } from './test-support.js';

const INVOCATION = [11, 12];
const SPEC = {
  id: 'alora',
  rank: 4,
  alpha: 16,
  invocationTokens: INVOCATION,
  targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj', 'lm_head'],
};
/** Two invocations: the adapter starts at the last one (position 7). */
const INVOKED = [3, 11, 12, 40, 41, 42, 9, 11, 12, 50, 51];
const PLAIN = [3, 40, 41, 42, 9, 50];

const argmax = (row: ArrayLike<number>) => {
  let best = 0;
  for (let v = 1; v < row.length; v++) if ((row[v] as number) > (row[best] as number)) best = v;
  return best;
};

describe('activated LoRA (PEFT alora_invocation_tokens)', () => {
  it('loads the invocation tokens; the model with firstAdapterTokens matches the float64 reference of PEFT’s rule', async () => {
    const m = await loadSpec(CHECKPOINT_PRESETS['qwen2-bias'], 'out-in', 2);
    try {
      const { config, weights } = m.checkpoint;
      const adapter: LoRAAdapter = loadPeftAdapter({ id: 'alora', ...adapterFiles(config, SPEC, 5) });
      expect(adapter.invocationTokens).toEqual(INVOCATION);
      m.runtime.adapters.register(adapter);
      const V = config.vocabSize;
      const run = async (ids: (string | null)[], prompts: number[][], firsts?: number[]) => {
        const seqs = prompts.map(() => new Sequence());
        m.runtime.adapters.setBatch(
          ids,
          prompts.map((p) => p.length),
          undefined,
          firsts,
        );
        const logits = await m.model.forward(prompts.map((p, i) => ({ seq: seqs[i] as Sequence, tokens: Int32Array.from(p) })));
        for (const s of seqs) s.dispose();
        return logits;
      };
      const logits = await run(['alora', 'alora'], [INVOKED, PLAIN], [7, PLAIN.length]);
      const invoked = referenceLogits(config, weights, INVOKED, adapter);
      expect(rowError(logits.subarray(0, V), invoked[invoked.length - 1] as Float64Array)).toBeLessThan(1e-4);
      // Without the invocation the adapter never applies: the base model's logits, bit for bit.
      const base = await run([null], [PLAIN]);
      expect(Array.from(logits.subarray(V, 2 * V))).toEqual(Array.from(base));
      // The adapter does change the invoked prompt's output, and only from position 7 on.
      const whole = referenceLogits(config, weights, INVOKED, adapter, { adapterFrom: 0 });
      expect(rowError(whole[whole.length - 1] as Float64Array, invoked[invoked.length - 1] as Float64Array)).toBeGreaterThan(1e-3);
    } finally {
      m.dispose();
    }
  });

  it('the Engine finds the last invocation in the prompt, across chunked prefill, and decodes with the adapter', async () => {
    const m = await loadSpec(CHECKPOINT_PRESETS['llama-untied'], 'out-in', 2);
    try {
      const { config, weights } = m.checkpoint;
      const adapter = loadPeftAdapter({ id: 'alora', ...adapterFiles(config, SPEC, 6) });
      m.runtime.adapters.register(adapter);
      // 4 tokens per step: the 11-token prompt is prefilled in three chunks, the adapter starting inside the second.
      const engine = new Engine({ model: m.model, maxNumSeqs: 2, maxNumBatchedTokens: 4 });
      const sampling = { temperature: 0, maxTokens: 5, ignoreEos: true };
      const [invoked, plain, base] = await Promise.all([
        engine.add({ prompt: INVOKED, adapter: 'alora', sampling }).result,
        engine.add({ prompt: PLAIN, adapter: 'alora', sampling }).result,
        engine.add({ prompt: PLAIN, sampling }).result,
      ]);
      expect(plain?.tokenIds).toEqual(base?.tokenIds);
      // Each generated token is the float64 reference's greedy choice with the adapter from position 7.
      const tokens = [...INVOKED];
      for (const next of invoked?.tokenIds ?? []) {
        const ref = referenceLogits(config, weights, tokens, adapter, { adapterFrom: 7 });
        const row = ref[ref.length - 1] as Float64Array;
        const sorted = Float64Array.from(row).sort();
        // A near-tie may round either way in float32; every other step must match exactly.
        if ((sorted[sorted.length - 1] as number) - (sorted[sorted.length - 2] as number) > 1e-3) expect(next).toBe(argmax(row));
        tokens.push(next);
      }
      await engine.close();
    } finally {
      m.dispose();
    }
  });

  it('an activated LoRA cannot be mixed; one with an embedding module is refused', async () => {
    const m = await loadSpec(CHECKPOINT_PRESETS['llama-untied'], 'out-in', 2);
    try {
      const { config } = m.checkpoint;
      m.runtime.adapters.register(loadPeftAdapter({ id: 'alora', ...adapterFiles(config, SPEC, 7) }));
      expect(() => m.runtime.adapters.checkMix([{ id: 'alora', weight: 1 }])).toThrow(/E_UNSUPPORTED.*activated LoRA/);
      const embedded = adapterFiles(config, { ...SPEC, targets: ['embed_tokens', 'q_proj'] }, 8);
      expect(() => loadPeftAdapter({ id: 'x', ...embedded })).toThrow(/E_UNSUPPORTED.*embed_tokens is an embedding/);
    } finally {
      m.dispose();
    }
  });
});
