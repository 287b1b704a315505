import { Random, slotIndices } from '@lora/conformance';
import { createLoRA } from '@lora/core';
import { tokenBuckets } from '@lora/core/backend';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { createTpuSimBackend } from './index.js';

const MAX_TOKENS = 4096;
const BUCKETS = tokenBuckets(MAX_TOKENS).length;

/**
 * A serving trace: 200 batches, T uniform in 1–4096, 1–8 adapters in random, single-adapter and
 * prefill-run patterns, through the public runtime. Returns compiles per program kind (kernel name
 * and mask mode: the single-adapter no-mask program is a different program, as in vLLM PR 15655).
 */
async function trace(options: Record<string, unknown>): Promise<{ total: number; perKind: Map<string, number> }> {
  const backend = createTpuSimBackend(options);
  const rt = await createLoRA({ backend, maxLoras: 8, maxLoraRank: 16, maxNumTokens: MAX_TOKENS });
  const rng = new Random(2024);
  const [H, O, R] = [36, 20, 16];
  const a = tf.randomNormal([8, R, H]) as tf.Tensor3D;
  const b = tf.randomNormal([8, O, R]) as tf.Tensor3D;
  try {
    for (let i = 0; i < 200; i++) {
      const T = rng.int(1, MAX_TOKENS);
      const slots = slotIndices(rng, rng.pick(['random', 'single', 'requests'] as const), T, rng.int(1, 8));
      rt.punica.updateMetadata({ tokenLoraIndices: slots });
      tf.tidy(() => rt.punica.addLoRALinear(tf.zeros([T, O]), tf.randomNormal([T, H]), [a], [b], 1, [O]).dispose());
    }
  } finally {
    tf.dispose([a, b]);
    rt.dispose();
  }
  const perKind = new Map<string, number>();
  for (const sig of backend.sim.cache.signatures()) {
    const kind = `${sig.split(';')[0]}/${/mode=(\w+)/.exec(sig)?.[1] ?? 'xla'}`;
    perKind.set(kind, (perKind.get(kind) ?? 0) + 1);
  }
  return { total: backend.stats!().programsCompiled, perKind };
}

describe('compiles over a random 200-batch trace (T 1–4096, 1–8 adapters)', () => {
  it(`bucketing: each program kind compiles at most once per token bucket (${BUCKETS}); without it, far more`, async () => {
    for (const preset of ['all-on', 'einsum']) {
      const bucketed = await trace({ preset });
      expect(bucketed.total).toBe([...bucketed.perKind.values()].reduce((s, n) => s + n, 0));
      for (const [kind, n] of bucketed.perKind) expect(n, `${preset} ${kind}`).toBeLessThanOrEqual(BUCKETS);
      const unbucketed = await trace({ preset, flags: { bucketing: false } });
      expect(unbucketed.total, `${preset}: unbucketed compiles`).toBeGreaterThan(4 * bucketed.total);
    }
  }, 120_000);
});
