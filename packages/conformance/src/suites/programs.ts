import { tokenBuckets } from '@lora/core/backend';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { type BackendCapabilities, type BackendFactory, makeRuntime } from '../harness.js';
import { Random, slotIndices } from '../random.js';

const MAX_TOKENS = 4096;
const RANKS = [8, 16, 32, 64];

/**
 * Static shapes: sizes travel as uniforms and token counts are bucketed, so a serving trace with
 * ever-changing T, adapters and ranks must compile a handful of GPU programs, not one per batch.
 * Runs for backends that count their programs (`stats().programsCompiled`) and declare a bound.
 */
export function programSuite(factory: BackendFactory, caps: BackendCapabilities): void {
  const bound = caps.maxPrograms;
  if (bound === undefined) return;
  describe('static shapes', () => {
    it(
      `a 200-batch random trace (T 1–${MAX_TOKENS}, 1–8 adapters, ranks ${RANKS.join('/')}) compiles ≤ ${bound} programs`,
      async () => {
        const rng = new Random(200);
        const rt = await makeRuntime(factory, { maxLoras: 8, maxLoraRank: 64, maxNumTokens: MAX_TOKENS });
        // tfjs caches programs per process/page, so count what this trace adds (describeBackend runs it first).
        const before = rt.backend.stats?.().programsCompiled ?? 0;
        // H multiple of 4 and O not: both vectorised and scalar tails are in play where a backend has them.
        const [H, O] = [36, 20];
        const stacks = new Map(
          RANKS.map((R) => [R, { a: tf.randomNormal([8, R, H]) as tf.Tensor3D, b: tf.randomNormal([8, O, R]) as tf.Tensor3D }]),
        );
        try {
          for (let i = 0; i < 200; i++) {
            const T = rng.int(1, MAX_TOKENS);
            const { a, b } = stacks.get(rng.pick(RANKS))!;
            const slots = slotIndices(rng, rng.pick(['random', 'single', 'requests'] as const), T, rng.int(1, 8));
            rt.punica.updateMetadata({ tokenLoraIndices: slots });
            const x = tf.randomNormal([T, H]) as tf.Tensor2D;
            const y = tf.zeros([T, O]) as tf.Tensor2D;
            const out = rt.punica.addLoRALinear(y, x, [a], [b], 1, [O]);
            // Reads now and then keep GPU queues from growing without bound.
            if (i % 50 === 0) await out.data();
            tf.dispose([x, y, out]);
          }
          const compiled = (rt.backend.stats?.().programsCompiled ?? Number.NaN) - before;
          expect(compiled, 'stats().programsCompiled must count the programs this backend compiled').toBeGreaterThan(0);
          expect(compiled).toBeLessThanOrEqual(Math.min(bound, tokenBuckets(MAX_TOKENS).length));
        } finally {
          for (const { a, b } of stacks.values()) tf.dispose([a, b]);
          rt.dispose();
        }
      },
      Math.max(caps.timeoutMs ?? 60_000, 300_000),
    );
  });
}
