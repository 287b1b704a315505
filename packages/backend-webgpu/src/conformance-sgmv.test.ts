import { describeBackend, GPU_SKIPS } from '@lora/conformance';
import { createWebGPUBackend } from './index.js';

// The SGMV programs on every case (on SwiftShader 'auto' picks BGMV, so force them here).
describeBackend(() => createWebGPUBackend({ path: 'sgmv' }), {
  name: 'webgpu, SGMV path (node, dawn)',
  timeoutMs: 120_000,
  gpuMemory: 'deferred',
  leakBatches: 300,
  skip: GPU_SKIPS,
});
