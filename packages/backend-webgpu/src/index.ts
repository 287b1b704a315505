import {
  checkBackendOptions,
  type LoRABackend,
  LoRAError,
  type LoRAMapping,
  registerLoRABackend,
  runExpandKernel,
  runShrinkKernel,
} from '@lora/core';
import { getKernel, keep, registerKernel, setBackend, type Tensor, tensor1d } from '@tensorflow/tfjs-core';
import { webgpuKernels } from './kernels.js';
import { initNodeWebGPU } from './node.js';
import { SHADER_PREFIX } from './programs.js';

export { webgpuKernels } from './kernels.js';
export { initNodeWebGPU, SWIFTSHADER_ICD } from './node.js';
export { CopyProgram, ExpandProgram, ShrinkProgram } from './programs.js';

interface GpuLike {
  gpu?: { requestAdapter(): Promise<unknown> };
}

// Asked once per page/process: Chromium hands out a null adapter when asked again and again.
let adapterAvailable: Promise<boolean> | undefined;
const hasAdapter = (): Promise<boolean> =>
  (adapterAvailable ??= Promise.resolve((globalThis as { navigator?: GpuLike }).navigator?.gpu?.requestAdapter() ?? null).then(
    (a) => a !== null,
  ));

/** The tfjs webgpu backend instance, for counting our compiled pipelines. */
async function webgpuBackend(): Promise<{ pipelineCache?: Record<string, unknown> } | undefined> {
  const tf = await import('@tensorflow/tfjs-core');
  return tf.findBackend('webgpu') as { pipelineCache?: Record<string, unknown> } | undefined;
}

/**
 * The WebGPU backend: WGSL shrink/expand programs run by tfjs-backend-webgpu. The token→slot index
 * is uploaded once per batch (per mapping), single-adapter batches skip it, batches without LoRA
 * launch nothing (core). Works in browsers with WebGPU and in Node through Dawn.
 */
export function createWebGPUBackend(options: Readonly<Record<string, unknown>> = {}): LoRABackend {
  checkBackendOptions('webgpu', options, ['vulkanIcd']);
  const indices = new Map<LoRAMapping, Tensor>();
  let tfBackend: { pipelineCache?: Record<string, unknown> } | undefined;
  let disposed = false;

  /** Uploaded once per mapping; older batches' uploads are freed when a newer one arrives. */
  const indexFor = (meta: LoRAMapping): Record<string, Tensor> => {
    if (meta.singleLoRA) return {};
    let idx = indices.get(meta);
    if (!idx) {
      for (const [m, t] of indices) {
        if (m.version < meta.version) {
          t.dispose();
          indices.delete(m);
        }
      }
      idx = keep(tensor1d(meta.tokenLoraIndices, 'int32'));
      indices.set(meta, idx);
    }
    return { idx };
  };

  return {
    name: 'webgpu',
    tfBackend: 'webgpu',
    async init() {
      await initNodeWebGPU({ vulkanIcd: options.vulkanIcd as string | undefined });
      if (!(await hasAdapter())) {
        throw new LoRAError(
          'E_BACKEND',
          typeof window === 'undefined'
            ? 'no WebGPU adapter: in Node install a Vulkan driver (Debian: apt-get install libvulkan1 chromium, for SwiftShader)'
            : 'no WebGPU adapter in this browser: enable WebGPU (Chromium: a supported GPU, or --enable-unsafe-webgpu)',
        );
      }
      await import('@tensorflow/tfjs-backend-webgpu');
      for (const kernel of webgpuKernels()) if (getKernel(kernel.kernelName, kernel.backendName) === undefined) registerKernel(kernel);
      if (!(await setBackend('webgpu'))) throw new LoRAError('E_BACKEND', 'tf.setBackend("webgpu") failed');
      tfBackend = await webgpuBackend();
    },
    shrink(x, loraA, meta, scale) {
      return runShrinkKernel(x, loraA, meta, scale, indexFor(meta));
    },
    expand(y, x, loraB, meta, outputSlices, offsetStart, addInputs) {
      return runExpandKernel(y, x, loraB, meta, outputSlices, offsetStart, addInputs, indexFor(meta));
    },
    stats() {
      const programsCompiled = Object.keys(tfBackend?.pipelineCache ?? {}).filter((k) => k.startsWith(SHADER_PREFIX)).length;
      // Tensors held on purpose (this batch's index uploads), so leak checks can tell them apart.
      const held = [...indices.values()];
      return { programsCompiled, tensorsHeld: held.length, bytesHeld: held.reduce((n, t) => n + 4 * t.size, 0) };
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      for (const t of indices.values()) t.dispose();
      indices.clear();
    },
  };
}

registerLoRABackend('webgpu', createWebGPUBackend);
