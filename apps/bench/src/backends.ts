import '@tensorflow/tfjs-backend-cpu';
import '@lora/backend-cpu';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createLoRA, FIRST_PARTY_BACKENDS } from '@lora/core';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs-core';

// tfjs' "install tfjs-node" banner would land in the middle of the progress output. PROD, not
// IS_TEST: that one also runs tfjs' leak bookkeeping on every kernel, which is not what is measured.
tf.env().set('PROD', true);

let wasmReady: Promise<boolean> | undefined;

/**
 * tfjs-backend-wasm in Node: the .wasm binaries ship inside the package, so point tfjs at them
 * (offline). Threads are off in Node; SIMD is on.
 */
export function initWasm(): Promise<boolean> {
  wasmReady ??= (async () => {
    const require = createRequire(import.meta.url);
    const pkgDir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
    setWasmPaths(`${join(pkgDir, 'dist')}/`);
    const ok = await tf.setBackend('wasm');
    await tf.setBackend('cpu');
    return ok;
  })();
  return wasmReady;
}

/** How the bench sizes a backend's grid, from what the backend declares (never from its name). */
export type GridKind = 'host' | 'gpu' | 'cost-model';

/** A first-party backend as it came up in this process: the grid it gets, or why it cannot run here. */
export interface NodeBackend {
  name: string;
  kind?: GridKind;
  problem?: string;
}

let probed: Promise<NodeBackend[]> | undefined;

/**
 * Starts every first-party backend once in this process (core imports its package on demand) and
 * reads its declarations: a cost model (`stats().estimatedMicros`) is priced on the simulator's grid,
 * `compilesPrograms` without one is a GPU (software-rendered here: the smaller grid), anything else
 * runs the CPU sizes. A backend that does not start (webgl needs a browser) says why.
 */
export function probeNodeBackends(): Promise<NodeBackend[]> {
  probed ??= (async () => {
    const out: NodeBackend[] = [];
    for (const name of Object.keys(FIRST_PARTY_BACKENDS)) {
      try {
        const rt = await createLoRA({ backend: name });
        const costModel = rt.backend.stats?.().estimatedMicros !== undefined;
        out.push({ name, kind: costModel ? 'cost-model' : rt.backend.compilesPrograms ? 'gpu' : 'host' });
        rt.dispose();
      } catch (err) {
        out.push({ name, problem: (err as Error).message });
      }
    }
    await tf.setBackend('cpu');
    return out;
  })();
  return probed;
}

/** Null when tfjs webgpu works here (Node: Dawn + a Vulkan driver), else why not (read from the probe). */
export async function gpuUnavailable(): Promise<string | null> {
  const webgpu = (await probeNodeBackends()).find((b) => b.name === 'webgpu');
  return webgpu?.kind !== undefined ? null : (webgpu?.problem ?? 'webgpu is not a first-party backend here');
}
