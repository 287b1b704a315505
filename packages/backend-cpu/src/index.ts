import '@tensorflow/tfjs-backend-cpu';
import { checkBackendOptions, defineLoRABackend, type LoRABackend, registerLoRABackend } from '@lora/core/backend';
import { type CpuEngine, chooseEngine } from './engine.js';
import { cpuKernels } from './kernels/register.js';
import { wasmKernels } from './kernels/register-wasm.js';
import { installHeapSlice } from './kernels/slice-wasm.js';
import { overwriteOnHeap, overwriteOnHost } from './overwrite.js';
import { simdSupported } from './simd/module.js';

export { type CpuEngine, loadTfjsWasm, type WasmSetup } from './engine.js';
export { type ExpandArgs, expandSegments } from './kernels/expand.js';
export { cpuKernels } from './kernels/register.js';
export { wasmKernels } from './kernels/register-wasm.js';
export { type ShrinkArgs, shrinkSegments } from './kernels/shrink.js';
export { simdSupported } from './simd/module.js';

/**
 * The `backendOptions` that {@link createCpuBackend} accepts (`createLoRA({ backend: 'cpu', backendOptions })`);
 * any other key is rejected with E_CONFIG.
 */
export interface CpuBackendOptions {
  /** 'wasm' (tfjs-backend-wasm + SIMD kernels, the default when it is installed) or 'js' (tfjs "cpu"). */
  engine?: CpuEngine;
  /** Browser only: where tfjs serves its .wasm binaries from (see tfjs' setWasmPaths). */
  wasmPaths?: string | Record<string, string>;
}

/**
 * The CPU backend. On engine "wasm" the kernels run as wasm SIMD on tfjs-backend-wasm's heap and
 * base weights are best kept `[H, O]` (XNNPACK's fast path, which layers do for you); on engine
 * "js" they are register-blocked typed-array loops on tfjs "cpu". Both group tokens by adapter
 * (SGMV segments). `createLoRA({ backend: 'cpu' })` finds it once this module is imported.
 */
export async function createCpuBackend(options: Readonly<Record<string, unknown>> = {}): Promise<LoRABackend> {
  checkBackendOptions('cpu', options, ['engine', 'wasmPaths']);
  const { engine: asked, wasmPaths } = options as CpuBackendOptions;
  const engine = await chooseEngine(asked, { wasmPaths });
  if (engine === 'js') {
    return defineLoRABackend({
      name: 'cpu',
      tfBackend: 'cpu',
      kernels: cpuKernels('cpu'),
      install: '@tensorflow/tfjs-backend-cpu',
      hostMemory: true,
      appliesTokenScales: true,
      skipsPaddedRanks: true,
      readsSlotRankB: true,
      overwrite: overwriteOnHost,
    });
  }
  // tfjs-wasm's Slice copies its whole input per call; ours copies the slice (kernels/slice-wasm.ts).
  installHeapSlice();
  return defineLoRABackend({
    name: 'cpu',
    tfBackend: 'wasm',
    kernels: wasmKernels(),
    install: '@tensorflow/tfjs-backend-wasm',
    weightLayout: 'in-out',
    // tfjs-wasm's write() copies every host array into its heap before it returns.
    copiesHostArrays: true,
    hostMemory: true,
    appliesTokenScales: true,
    skipsPaddedRanks: true,
    readsSlotRankB: true,
    overwrite: overwriteOnHeap,
    stats: () => ({ programsCompiled: 0, simd: simdSupported() ? 1 : 0 }),
  });
}

registerLoRABackend('cpu', createCpuBackend);
