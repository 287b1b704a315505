import { AdapterManager } from './adapters/manager.js';
import type { LoRABackend } from './backend.js';
import { type BackendCandidate, type LoRAConfig, type ResolvedLoRAConfig, resolveConfig } from './config.js';
import { LoRAError } from './errors.js';
import { PunicaWrapper } from './punica.js';
import { checkBackendObject, resolveBackendFactory } from './registry.js';

/**
 * What {@link createLoRA} returns: one started backend, the {@link PunicaWrapper} that calls it and
 * the {@link AdapterManager}, all sized by one config. Layers take it as their first argument.
 */
export interface LoRARuntime {
  /** The backend in use: the first of `LoRAConfig.backend`'s candidates that started here; `backend.stats?.()` reads its counters. */
  readonly backend: LoRABackend;
  /** Runs every layer's shrink and expand on `backend`, with the batch metadata `adapters.setBatch` set. */
  readonly punica: PunicaWrapper;
  /** Host cache, device slots and the batch mapping; layers register here when constructed. */
  readonly adapters: AdapterManager;
  /** The resolved config, `backend` and `backendOptions` being those of the backend in use. */
  readonly config: ResolvedLoRAConfig;
  /** Disposes the layers' adapter stacks, the wrapper and the backend; later calls throw E_DISPOSED. Idempotent. */
  dispose(): void;
}

/**
 * Builds a runtime for one backend, chosen by name (swap backends by changing a config value),
 * passed as an object, or the first of a list that starts here (`['webgpu', 'webgl', 'cpu']`).
 * A first-party name nobody registered yet is imported from its package (`FIRST_PARTY_BACKENDS`).
 */
export async function createLoRA(config: LoRAConfig): Promise<LoRARuntime> {
  const resolved = resolveConfig(config);
  const failures: string[] = [];
  let lastError: unknown;
  for (const candidate of resolved.candidates) {
    let backend: LoRABackend;
    try {
      backend = await startBackend(candidate);
    } catch (err) {
      // A backend that cannot start here gives way to the next one; anything else is the caller's to fix.
      if (resolved.candidates.length === 1 || !(err instanceof LoRAError && err.code === 'E_BACKEND')) throw err;
      failures.push(`${nameOf(candidate.backend)}: ${err.message}`);
      lastError = err;
      continue;
    }
    checkBatchLimit(backend, resolved.maxNumTokens);
    return runtimeOn(backend, Object.freeze({ ...resolved, backend: candidate.backend, backendOptions: candidate.options }));
  }
  throw new LoRAError('E_BACKEND', `none of the backends listed could start here — ${failures.join('; ')}`, { cause: lastError });
}

/** A `maxNumTokens` the started backend cannot run in one batch is a config error, found before any batch (the backend is disposed). */
function checkBatchLimit(backend: LoRABackend, maxNumTokens: number): void {
  const limit = backend.maxBatchTokens?.();
  if (limit === undefined || maxNumTokens <= limit) return;
  backend.dispose();
  throw new LoRAError(
    'E_CONFIG',
    `maxNumTokens = ${maxNumTokens} is more than backend "${backend.name}" can run in one batch here (at most ${limit} tokens); lower maxNumTokens`,
  );
}

const nameOf = (b: string | LoRABackend): string => (typeof b === 'string' ? `"${b}"` : `backend object "${String(b.name)}"`);

/** The candidate's backend, built and initialised; on a failed init it is disposed again. */
async function startBackend({ backend: choice, options }: BackendCandidate): Promise<LoRABackend> {
  const backend =
    typeof choice === 'string'
      ? checkBackendObject(await (await resolveBackendFactory(choice))(options), `the factory of "${choice}"`)
      : checkBackendObject(choice, 'config.backend');
  try {
    await backend.init();
  } catch (err) {
    try {
      backend.dispose();
    } catch {
      // The init failure is what the caller needs to see.
    }
    if (err instanceof LoRAError) throw err;
    throw new LoRAError('E_BACKEND', `backend "${backend.name}" failed to initialise: ${(err as Error)?.message ?? err}`, { cause: err });
  }
  return backend;
}

function runtimeOn(backend: LoRABackend, config: ResolvedLoRAConfig): LoRARuntime {
  const punica = new PunicaWrapper(backend, config);
  const adapters = new AdapterManager(punica, config);
  let disposed = false;
  return {
    backend,
    punica,
    adapters,
    config,
    dispose() {
      if (disposed) return;
      disposed = true;
      adapters.dispose();
      punica.dispose();
      backend.dispose();
    },
  };
}
