import {
  checkBackendOptions,
  defineLoRABackend,
  type KernelBatch,
  type LoRABackend,
  LoRAError,
  MappingUploads,
  registerLoRABackend,
} from '@lora/core/backend';
import { findBackend } from '@tensorflow/tfjs-core';
import { type BatchLayout, batchLayout, useSegments, type WebGPUBatchAttrs } from './batch-layout.js';
import { webgpuKernels } from './kernels.js';
import { initNodeWebGPU } from './node.js';
import { overwriteOnGpu } from './overwrite.js';
import { SHADER_PREFIX } from './programs.js';

export { type BatchLayout, batchLayout, TOKEN_TILE, useSegments, type WebGPUBatchAttrs } from './batch-layout.js';
export { webgpuKernels } from './kernels.js';
export { initNodeWebGPU, SWIFTSHADER_ICD } from './node.js';
export type { Dispatch } from './programs.js';
export { CopyProgram, ExpandProgram, SegmentExpandProgram, SegmentShrinkProgram, ShrinkProgram } from './programs.js';

interface GpuLike {
  gpu?: { requestAdapter(): Promise<unknown> };
}

interface AdapterLike {
  isFallbackAdapter?: boolean;
  info?: { architecture?: string };
}

// Asked once per page/process: Chromium hands out a null adapter when asked again and again.
let adapterProbe: Promise<{ found: boolean; software: boolean }> | undefined;
const probeAdapter = () =>
  (adapterProbe ??= Promise.resolve((globalThis as { navigator?: GpuLike }).navigator?.gpu?.requestAdapter() ?? null).then((a) => {
    const adapter = a as AdapterLike | null;
    return { found: adapter !== null, software: adapter?.isFallbackAdapter === true || adapter?.info?.architecture === 'swiftshader' };
  }));

/**
 * Which programs a batch runs. 'sgmv': token tiles per segment that share A and B rows through
 * workgroup memory; 'bgmv': token by token. 'auto' takes SGMV for long segments (prefill) on
 * hardware GPUs, and BGMV on software adapters, where workgroup memory and barriers cost more than
 * they save (SwiftShader: BGMV 1.5–2× faster at prefill in apps/bench).
 */
export type WebGPUPath = 'auto' | 'bgmv' | 'sgmv';

/**
 * The WebGPU backend: WGSL shrink/expand programs run by tfjs-backend-webgpu. The token→slot index
 * is uploaded once per batch (per mapping), single-adapter batches skip it, batches without LoRA
 * launch nothing (core). Works in browsers with WebGPU and in Node through Dawn.
 */
export function createWebGPUBackend(options: Readonly<Record<string, unknown>> = {}): LoRABackend {
  checkBackendOptions('webgpu', options, ['vulkanIcd', 'path']);
  const path = (options.path ?? 'auto') as WebGPUPath;
  if (!['auto', 'bgmv', 'sgmv'].includes(path)) {
    throw new LoRAError('E_CONFIG', `backendOptions.path must be "auto", "bgmv" or "sgmv", got ${JSON.stringify(options.path)}`);
  }
  let software = false;
  const uploads = new MappingUploads<BatchLayout>();
  return defineLoRABackend({
    name: 'webgpu',
    tfBackend: 'webgpu',
    compilesPrograms: true,
    skipsPaddedRanks: true,
    overwrite: overwriteOnGpu,
    kernels: webgpuKernels(),
    install: '@tensorflow/tfjs-backend-webgpu',
    async prepare() {
      await initNodeWebGPU({ vulkanIcd: options.vulkanIcd as string | undefined });
      const adapter = await probeAdapter();
      software = adapter.software;
      if (!adapter.found) {
        throw new LoRAError(
          'E_BACKEND',
          typeof window === 'undefined'
            ? 'no WebGPU adapter: in Node install a Vulkan driver (Debian: apt-get install libvulkan1 chromium, for SwiftShader)'
            : 'no WebGPU adapter in this browser: enable WebGPU (Chromium: a supported GPU, or --enable-unsafe-webgpu)',
        );
      }
      await import('@tensorflow/tfjs-backend-webgpu');
    },
    /** The path the kernels take (an attribute), and the batch layout they read, uploaded once per mapping. */
    batch(meta): KernelBatch {
      const segmented = path === 'sgmv' ? meta.numLoRATokens > 0 : path === 'auto' && !software && useSegments(meta);
      if (!segmented && meta.singleLoRA) return { attrs: { path: 'single' } satisfies WebGPUBatchAttrs };
      const { index, layout } = uploads.get(meta, batchLayout);
      const { numTiles, sortedOffset, tilesOffset } = layout;
      return { index, attrs: { path: segmented ? 'sgmv' : 'bgmv', numTiles, sortedOffset, tilesOffset } satisfies WebGPUBatchAttrs };
    },
    // The non-flat programs put tokens (or token tiles) on the grid's y axis, which tfjs cannot fold
    // into x: a batch larger than the device's per-dimension limit would fail at dispatch.
    maxBatchTokens() {
      const device = (findBackend('webgpu') as { device?: { limits?: { maxComputeWorkgroupsPerDimension?: number } } } | null)?.device;
      return device?.limits?.maxComputeWorkgroupsPerDimension;
    },
    stats() {
      const cache = (findBackend('webgpu') as { pipelineCache?: Record<string, unknown> } | null)?.pipelineCache ?? {};
      const programsCompiled = Object.keys(cache).filter((k) => k.startsWith(SHADER_PREFIX)).length;
      // Held on purpose (this batch's layout uploads), reported so leak checks can tell them apart.
      return { programsCompiled, ...uploads.held(), softwareAdapter: software ? 1 : 0 };
    },
    dispose: () => uploads.dispose(),
  });
}

registerLoRABackend('webgpu', createWebGPUBackend);
