import { describeBackend, GPU_SKIPS } from '@lora/conformance';
import { createWebGPUBackend } from './index.js';

// In Chromium (vitest browser mode): WebGPU through SwiftShader.
describeBackend(() => createWebGPUBackend(), {
  name: 'webgpu (chromium)',
  timeoutMs: 120_000,
  gpuMemory: 'deferred',
  // 150 tiny-Llama batches: each is ~50 dispatches, a few ms each on SwiftShader.
  leakBatches: 150,
  skip: GPU_SKIPS,
});
