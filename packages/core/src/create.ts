import { AdapterManager } from './adapters/manager.js';
import type { LoRABackend } from './backend.js';
import { type LoRAConfig, type ResolvedLoRAConfig, resolveConfig } from './config.js';
import { LoRAError } from './errors.js';
import { PunicaWrapper } from './punica.js';
import { checkBackendObject, resolveBackendFactory } from './registry.js';

export interface LoRARuntime {
  readonly backend: LoRABackend;
  readonly punica: PunicaWrapper;
  /** Host cache, device slots and the batch mapping; layers register here when constructed. */
  readonly adapters: AdapterManager;
  readonly config: ResolvedLoRAConfig;
  /** Disposes the layers' adapter stacks, the wrapper and the backend; later calls throw E_DISPOSED. Idempotent. */
  dispose(): void;
}

/**
 * Builds a runtime for one backend, chosen by name (swap backends by changing a config value) or
 * passed as an object. A name that is not registered is imported as `@lora/backend-<name>`.
 */
export async function createLoRA(config: LoRAConfig): Promise<LoRARuntime> {
  const resolved = resolveConfig(config);
  const backend =
    typeof resolved.backend === 'string'
      ? checkBackendObject(
          await (await resolveBackendFactory(resolved.backend))(resolved.backendOptions),
          `the factory of "${resolved.backend}"`,
        )
      : checkBackendObject(resolved.backend, 'config.backend');
  try {
    await backend.init();
  } catch (err) {
    if (err instanceof LoRAError) throw err;
    throw new LoRAError('E_BACKEND', `backend "${backend.name}" failed to initialise: ${(err as Error)?.message ?? err}`, { cause: err });
  }
  const punica = new PunicaWrapper(backend, resolved);
  const adapters = new AdapterManager(punica, resolved);
  let disposed = false;
  return {
    backend,
    punica,
    adapters,
    config: resolved,
    dispose() {
      if (disposed) return;
      disposed = true;
      adapters.dispose();
      punica.dispose();
      backend.dispose();
    },
  };
}
