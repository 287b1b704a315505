import { describeBackend, GPU_SKIPS } from '@lora/conformance';
import { createWebGPUBackend } from './index.js';

// In Chromium (vitest browser mode): WebGPU through SwiftShader.
describeBackend(() => createWebGPUBackend(), {
  name: 'webgpu (chromium)',
  timeoutMs: 120_000,
  gpuMemory: 'deferred',
  leakBatches: 300,
  skip: GPU_SKIPS,
});
