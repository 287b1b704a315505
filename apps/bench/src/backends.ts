import '@tensorflow/tfjs-backend-cpu';
import '@lora/backend-cpu';
import '@lora/backend-webgpu';
import '@lora/backend-tpu-sim';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createLoRA } from '@lora/core';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs-core';

// tfjs' "install tfjs-node" banner would land in the middle of the progress output.
tf.env().set('IS_TEST', true);

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

let gpuReady: Promise<string | null> | undefined;

/** Null when tfjs webgpu works here (Node: Dawn + a Vulkan driver), else why not. */
export function gpuUnavailable(): Promise<string | null> {
  gpuReady ??= (async () => {
    try {
      const rt = await createLoRA({ backend: 'webgpu' });
      rt.dispose();
      await tf.setBackend('cpu');
      return null;
    } catch (err) {
      return (err as Error).message;
    }
  })();
  return gpuReady;
}
