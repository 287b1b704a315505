import { LoRAError } from '@lora/core';
import { isNode, nodeBuiltins } from '@lora/core/backend';
import { findBackendFactory } from '@tensorflow/tfjs-core';

// A computed specifier: bundlers leave it alone, and a missing optional peer is a run-time question.
// It stays in this module: a bare specifier resolves from the importing file, and this package is
// where the optional peer is installed.
const importOptional = (specifier: string): Promise<unknown> => import(/* @vite-ignore */ specifier);

/**
 * Which tfjs backend the CPU LoRA backend computes on:
 *  - 'wasm': tfjs-backend-wasm (XNNPACK base matmuls) with our SIMD kernels on its heap;
 *  - 'js':   tfjs "cpu" with the scalar typed-array kernels.
 */
export type CpuEngine = 'wasm' | 'js';

/**
 * Where {@link loadTfjsWasm} points tfjs-backend-wasm for its `.wasm` binaries. Only the first
 * load that imports the package applies it: later setups in the same process are ignored.
 */
export interface WasmSetup {
  /** Where the tfjs .wasm binaries are served from in a browser (passed to setWasmPaths). Node finds them itself. */
  wasmPaths?: string | Record<string, string>;
}

let pathsSet = false;

/**
 * Imports @tensorflow/tfjs-backend-wasm (an optional peer) and points it at its .wasm files. In a
 * bundled browser app, which cannot import a computed specifier, the app imports it (and calls
 * setWasmPaths with the URLs its bundler serves); then it is already registered and used as is.
 */
export async function loadTfjsWasm(setup: WasmSetup = {}): Promise<void> {
  if (!isNode() && setup.wasmPaths === undefined && findBackendFactory('wasm') !== null) return;
  let mod: { setWasmPaths(prefix: string | Record<string, string>): void };
  try {
    mod = (await importOptional('@tensorflow/tfjs-backend-wasm')) as typeof mod;
  } catch (err) {
    throw new LoRAError(
      'E_BACKEND',
      'engine "wasm" needs @tensorflow/tfjs-backend-wasm; run `npm install @tensorflow/tfjs-backend-wasm` or use backendOptions: { engine: "js" }',
      { cause: err },
    );
  }
  if (pathsSet) return;
  let prefix = setup.wasmPaths;
  if (prefix === undefined && isNode()) {
    // The binaries ship inside the package: load them from disk, offline.
    const { module, path } = await nodeBuiltins('module', 'path');
    // Resolved from here, like the import above (the optional peer sits beside this package).
    const entry = module.createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm');
    prefix = `${path.join(path.dirname(entry), '/')}`;
  }
  if (prefix !== undefined) {
    try {
      mod.setWasmPaths(prefix);
    } catch {
      // Already initialised by the app, with its own paths: keep them.
    }
  }
  pathsSet = true;
}

let noticeShown = false;

/** The engine to use: as asked, or wasm when tfjs-backend-wasm is installed, else js with a one-line notice. */
export async function chooseEngine(
  asked: unknown,
  setup: WasmSetup,
  loadWasm: (setup: WasmSetup) => Promise<void> = loadTfjsWasm,
): Promise<CpuEngine> {
  if (asked !== undefined && asked !== 'wasm' && asked !== 'js') {
    throw new LoRAError('E_CONFIG', `backendOptions.engine must be "wasm" or "js", got ${JSON.stringify(asked)}`);
  }
  if (asked === 'js') return 'js';
  if (asked === 'wasm') {
    await loadWasm(setup);
    return 'wasm';
  }
  try {
    await loadWasm(setup);
    return 'wasm';
  } catch {
    if (!noticeShown) {
      noticeShown = true;
      console.warn(
        '[@lora/backend-cpu] @tensorflow/tfjs-backend-wasm is not installed: using the JS kernels on tfjs "cpu" (install it for SIMD kernels and XNNPACK)',
      );
    }
    return 'js';
  }
}
