import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { CHECKPOINT_PRESETS, type CheckpointPreset } from './fixtures.js';
import { greedy } from './greedy.js';
import { referenceLogits } from './reference.js';
import { seeded } from './rng.js';
import { Sequence } from './sequence.js';
import { loadSpec, rowError, testAdapters } from './test-support.js';

const TOLERANCE = 1e-4;
const measured: Record<string, { base: number; lora: number }> = {};

afterAll(() => {
  // The accuracy table quoted in the README and the changeset.
  console.log(
    `max relative error per logits row (max |Δ| / rms(row)) vs the float64 reference:\n${Object.entries(measured)
      .map(([p, e]) => `  ${p.padEnd(24)} no adapter ${e.base.toExponential(2)}   mixed adapters ${e.lora.toExponential(2)}`)
      .join('\n')}`,
  );
});

/** Seeded prompts of the given lengths. */
function prompts(vocab: number, lengths: number[], seed: number): Int32Array[] {
  const next = seeded(seed);
  return lengths.map((n) => Int32Array.from({ length: n }, () => Math.floor(next() * vocab)));
}

const LAYOUTS = ['out-in', 'in-out'] as const;

describe.each(Object.keys(CHECKPOINT_PRESETS) as CheckpointPreset[])('%s', (preset) => {
  it.each(LAYOUTS)(
    'loads (base weights %s) and matches the float64 reference: prefill then decode, a mixed batch of LoRA, DoRA and no adapter',
    async (layout) => {
      const before = tf.memory().numTensors;
      const m = await loadSpec(CHECKPOINT_PRESETS[preset], layout, 3);
      const { config, weights } = m.checkpoint;
      const adapters = testAdapters(config);
      for (const a of adapters) m.runtime.adapters.register(a);
      // Sequences 0, 1 (LoRA) and 2 (DoRA) with adapters, 3 without: every layer's batch mixes four mappings.
      const ids = [adapters[0]?.id as string, adapters[1]?.id as string, adapters[2]?.id as string, null];
      const fed = prompts(config.vocabSize, [7, 3, 4, 5], preset.length);
      const seqs = ids.map(() => new Sequence());
      const steps: Float32Array[] = [];
      try {
        let chunks = seqs.map((seq, i) => ({ seq, tokens: fed[i] as Int32Array }));
        for (let step = 0; step < 5; step++) {
          m.runtime.adapters.setBatch(
            ids,
            chunks.map((c) => c.tokens.length),
          );
          const logits = await m.model.forward(chunks);
          steps.push(logits);
          const next = greedy(logits, config.vocabSize).tokens;
          chunks = seqs.map((seq, i) => ({ seq, tokens: Int32Array.of(next[i] as number) }));
          next.forEach((t, i) => {
            fed[i] = Int32Array.of(...(fed[i] as Int32Array), t);
          });
        }
        expect(seqs.map((s) => s.length)).toEqual([7 + 4, 3 + 4, 4 + 4, 5 + 4]);
      } finally {
        for (const s of seqs) s.dispose();
      }
      const errors = { base: 0, lora: 0 };
      ids.forEach((id, i) => {
        const tokens = (fed[i] as Int32Array).subarray(0, (seqs[i] as Sequence).length);
        const ref = referenceLogits(
          config,
          weights,
          tokens,
          adapters.find((a) => a.id === id),
        );
        const first = tokens.length - steps.length;
        steps.forEach((logits, s) => {
          const err = rowError(logits.subarray(i * config.vocabSize, (i + 1) * config.vocabSize), ref[first + s] as Float64Array);
          const key = id === null ? 'base' : 'lora';
          errors[key] = Math.max(errors[key], err);
        });
      });
      measured[`${preset} (${layout})`] = errors;
      expect(errors.base).toBeLessThan(TOLERANCE);
      expect(errors.lora).toBeLessThan(TOLERANCE);
      m.dispose();
      expect(tf.memory().numTensors).toBe(before);
    },
  );
});
