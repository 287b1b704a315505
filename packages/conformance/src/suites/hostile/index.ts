import { LoRAError } from '@lora/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type BackendCapabilities, type BackendFactory, DEFAULT_TOLERANCE, isNode } from '../../harness.js';
import { runStep, type Step, stepArbitrary } from './steps.js';
import { createWorld, liveTensors, resetWorld, type World } from './world.js';

/** Steps per run: 20,000 by default; `LORA_HOSTILE_STEPS=200000` for a thorough run before a release. */
function stepBudget(caps: BackendCapabilities): number {
  const fromEnv = isNode ? Number(process.env.LORA_HOSTILE_STEPS) : Number.NaN;
  return Number.isSafeInteger(fromEnv) && fromEnv > 0 ? fromEnv : (caps.hostileSteps ?? 20_000);
}

/** The runtime's observable state must be the model's after every step, and no tensor may be left behind. */
async function expectState(world: World, after: string): Promise<void> {
  const { rt, model } = world;
  const where = `after ${after}`;
  expect(rt.adapters.slots, `${where}: slots`).toEqual(model.slots);
  expect(rt.adapters.registered, `${where}: host cache (LRU order)`).toEqual([...model.registered.keys()]);
  expect(rt.adapters.hostMemory, `${where}: host cache bytes`).toBe(model.hostBytes);
  for (const id of model.registered.keys()) expect(rt.adapters.isPinned(id), `${where}: pin of ${id}`).toBe(model.isPinned(id));
  expect([...rt.adapters.batch].sort(), `${where}: batch`).toEqual([...model.batch].sort());
  if (model.meta === undefined) expect(() => rt.punica.meta).toThrow(LoRAError);
  else {
    expect(Array.from(rt.punica.meta.tokenLoraIndices), `${where}: token mapping`).toEqual(model.meta.tokens);
    expect(Array.from(rt.punica.meta.sampler.tokenLoraIndices), `${where}: sampler mapping`).toEqual(model.meta.sampler);
  }
  expect(liveTensors(world), `${where}: live tensors`).toBe(world.baseline);
}

/**
 * Random sessions of every public operation — register / activate / deactivate / remove / pin /
 * unpin / setBatch, punica.updateMetadata and addLoRALinear, every layer's forward and setLoRA,
 * loadPeftAdapter, resolveConfig — with hostile values mixed in (wrong sizes, NaN, huge numbers,
 * arrays that change between reads or lie about their length, throwing getters, disposed tensors).
 * After each step the runtime must agree with a float64 model of the system: the same result, or
 * a LoRAError with a code the model allows and the observable state unchanged; no tensor leaked.
 */
export function hostileSuite(factory: BackendFactory, caps: BackendCapabilities): void {
  const budget = stepBudget(caps);
  const tolerance = caps.tolerance ?? DEFAULT_TOLERANCE;
  describe.skipIf(!isNode)('hostile sessions (fast-check, Node): every public operation agrees with a float64 model', () => {
    it(
      `${budget} random steps with hostile values: model-equal results or LoRAError with the state unchanged, no leaks`,
      async () => {
        const world = await createWorld(factory);
        let steps = 0;
        try {
          while (steps < budget) {
            await fc.assert(
              fc.asyncProperty(fc.array(stepArbitrary, { minLength: 20, maxLength: 80 }), async (session: Step[]) => {
                resetWorld(world);
                await expectState(world, 'reset');
                for (const [i, step] of session.entries()) {
                  await runStep(world, step, tolerance);
                  await expectState(world, `step ${i} ${JSON.stringify(step).slice(0, 200)}`);
                  steps++;
                }
              }),
              { numRuns: 50 },
            );
          }
        } finally {
          world.dispose();
        }
        expect(steps).toBeGreaterThanOrEqual(budget);
      },
      (caps.timeoutMs ?? 60_000) * 10,
    );
  });
}
