import type { LoRABackend, LoRABackendFactory } from './backend.js';
import { type BackendImporter, defaultBackendImporter, isEntryMissing, isModuleNotFound } from './backend-import.js';
import { describeValue, LoRAError } from './errors.js';
import { createReferenceBackend } from './reference-backend.js';

interface Registration {
  readonly factory: LoRABackendFactory;
  readonly priority: number;
}

// Kept on globalThis so that an ESM and a CJS copy of core (dual package) share registrations.
const REGISTRY_KEY = Symbol.for('@lora/core/backend-registry');
const registry: Map<string, Registration> = ((globalThis as Record<symbol, unknown>)[REGISTRY_KEY] ??= new Map()) as Map<
  string,
  Registration
>;

// Built in, so that any app can check its numbers against the float64 oracle by config alone.
if (!registry.has('reference')) registry.set('reference', { factory: createReferenceBackend, priority: -1 });

const NAME = /^[a-z][a-z0-9-]*$/;

/**
 * Called by a backend package when it is imported. When two factories claim one name, the higher
 * priority wins (a tuned build can replace a default one without the app changing its config).
 */
export function registerLoRABackend(name: string, factory: LoRABackendFactory, options: { priority?: number } = {}): void {
  if (!NAME.test(name)) throw new LoRAError('E_CONFIG', `backend name must match ${NAME}, got ${describeValue(name)}`);
  const priority = options.priority ?? 0;
  const current = registry.get(name);
  if (current === undefined || priority >= current.priority) registry.set(name, { factory, priority });
}

/**
 * Removes a name's registration, whatever its priority (the built-in "reference" included); runtimes
 * already created keep their backend. Returns whether the name was registered.
 */
export function unregisterLoRABackend(name: string): boolean {
  return registry.delete(name);
}

/** Registered backend names, highest priority first. */
export function listLoRABackends(): string[] {
  return [...registry.entries()].sort((a, b) => b[1].priority - a[1].priority).map(([name]) => name);
}

/**
 * The first-party backends and their packages: the only names core imports on demand. Any other
 * name must be registered first (a third-party package registers itself when the app imports it),
 * so a typo never becomes an invitation to install a package of that name.
 */
export const FIRST_PARTY_BACKENDS: Readonly<Record<string, string>> = Object.freeze({
  cpu: '@lora/backend-cpu',
  webgl: '@lora/backend-webgl',
  webgpu: '@lora/backend-webgpu',
  'tpu-sim': '@lora/backend-tpu-sim',
});

/** The package of a first-party backend, or undefined for any other name. */
export function backendPackageName(name: string): string | undefined {
  return Object.hasOwn(FIRST_PARTY_BACKENDS, name) ? FIRST_PARTY_BACKENDS[name] : undefined;
}

let importBackendPackage: BackendImporter = defaultBackendImporter;

/**
 * Replaces how backend packages are imported (a bundler that cannot follow a computed specifier can
 * map names to `() => import('@lora/backend-x')` here). Returns the previous importer.
 */
export function setBackendImporter(importer: BackendImporter): BackendImporter {
  const previous = importBackendPackage;
  importBackendPackage = importer;
  return previous;
}

/**
 * A registered factory, or for a first-party name the one that importing its package registers.
 * Any other name is refused with the names that would work.
 */
export async function resolveBackendFactory(name: string): Promise<LoRABackendFactory> {
  const registered = typeof name === 'string' ? registry.get(name) : undefined;
  if (registered) return registered.factory;
  const specifier = typeof name === 'string' ? backendPackageName(name) : undefined;
  if (specifier === undefined) {
    throw new LoRAError(
      'E_BACKEND',
      `unknown backend ${describeValue(name)}; expected one of ${knownNames()}, or a LoRABackend object. A third-party backend registers its name when its package is imported: import it before createLoRA`,
    );
  }
  try {
    await importBackendPackage(specifier);
  } catch (err) {
    if (isModuleNotFound(err, specifier)) {
      throw new LoRAError(
        'E_BACKEND',
        `backend "${name}" needs ${specifier}, which is not installed; run \`npm install ${specifier}\` (in a bundled app, also \`import '${specifier}'\` before createLoRA). Registered: ${knownNames('registered')}`,
        { cause: err },
      );
    }
    const hint = isEntryMissing(err)
      ? ` (${specifier} is installed but a file it loads is missing: if it is a workspace package, build it with \`npm run build\`)`
      : '';
    throw new LoRAError('E_BACKEND', `loading ${specifier} for backend "${name}" failed: ${(err as Error)?.message ?? err}${hint}`, {
      cause: err,
    });
  }
  const loaded = registry.get(name);
  if (!loaded) throw new LoRAError('E_BACKEND', `${specifier} was imported but did not register a backend named "${name}"`);
  return loaded.factory;
}

/** Registered names, and (unless only those are asked for) the first-party ones that can be imported. */
function knownNames(which: 'registered' | 'all' = 'all'): string {
  const names = new Set(listLoRABackends());
  if (which === 'all') for (const n of Object.keys(FIRST_PARTY_BACKENDS)) names.add(n);
  return names.size > 0 ? [...names].map((n) => `"${n}"`).join(', ') : '(none yet)';
}

const REQUIRED_METHODS = ['init', 'shrink', 'expand', 'dispose'] as const;

/** Rejects objects that do not implement the backend interface, before any of them is called. */
export function checkBackendObject(value: unknown, origin: string): LoRABackend {
  const b = value as Partial<LoRABackend> | null;
  const missing =
    b === null || typeof b !== 'object'
      ? ['everything']
      : [
          ...REQUIRED_METHODS.filter((m) => typeof b[m] !== 'function'),
          ...(['name', 'tfBackend'] as const).filter((k) => typeof b[k] !== 'string'),
        ];
  if (missing.length > 0) {
    throw new LoRAError('E_BACKEND', `${origin} is not a LoRABackend: missing ${missing.join(', ')} (got ${describeValue(value)})`);
  }
  return b as LoRABackend;
}
