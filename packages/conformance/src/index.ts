import { afterEach, describe } from 'vitest';
import { type BackendCapabilities, type BackendFactory, DEFAULT_TOLERANCE, drainQueue } from './harness.js';
import { adapterSuite } from './suites/adapters.js';
import { correctnessSuite } from './suites/correctness.js';
import { determinismSuite } from './suites/determinism.js';
import { doraSuite } from './suites/dora.js';
import { errorSuite } from './suites/errors.js';
import { hostileSuite } from './suites/hostile/index.js';
import { leakSuite } from './suites/leaks.js';
import { mixSuite } from './suites/mixes.js';
import { programSuite } from './suites/programs.js';
import { rankSuite } from './suites/ranks.js';
import { slotWriteSuite } from './suites/slot-writes.js';
import { strengthSuite } from './suites/strength.js';

export { EMBEDDING_CASES, type EmbeddingCase, LINEAR_CASES, type LinearCase, LOGITS_CASES, type LogitsCase } from './cases.js';
export * from './fixtures/tiny-llama.js';
export { type BackendCapabilities, type BackendFactory, DEFAULT_TOLERANCE, GPU_SKIPS, makeRuntime } from './harness.js';
export { Random, type SlotPattern, slotIndices } from './random.js';

/**
 * The one conformance suite every backend package runs (`src/conformance.test.ts`):
 *
 *     describeBackend(() => createCpuBackend(), { name: 'cpu' });
 *
 * Correctness against the float64 reference, every wrapper-reachable error code, leaks, and the
 * layers + adapter manager on a tiny Llama loaded from PEFT fixtures.
 * GPU backends that declare `maxPrograms` also run a static-shapes trace that counts compiled programs.
 * Backends differ only in their declared capabilities (tolerance, skip allow list, timeouts).
 */
export function describeBackend(factory: BackendFactory, capabilities: BackendCapabilities): void {
  describe(`conformance: ${capabilities.name} (tolerance ${capabilities.tolerance ?? DEFAULT_TOLERANCE})`, () => {
    // Each test pays for its own GPU work (see drainQueue), so its time and timeout are its own.
    afterEach(drainQueue, (capabilities.timeoutMs ?? 60_000) * 4);
    // First: it counts the programs it compiles, and tfjs' program cache outlives each test.
    programSuite(factory, capabilities);
    correctnessSuite(factory, capabilities);
    strengthSuite(factory, capabilities);
    rankSuite(factory, capabilities);
    slotWriteSuite(factory, capabilities);
    doraSuite(factory, capabilities);
    mixSuite(factory, capabilities);
    errorSuite(factory, capabilities);
    leakSuite(factory, capabilities);
    adapterSuite(factory, capabilities);
    hostileSuite(factory, capabilities);
    determinismSuite(factory, capabilities);
  });
}
