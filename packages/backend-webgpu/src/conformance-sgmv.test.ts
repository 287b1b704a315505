import { describeBackend, GPU_SKIPS } from '@lora/conformance';
import { createWebGPUBackend } from './index.js';

// The SGMV programs on every case (on SwiftShader 'auto' picks BGMV, so force them here).
describeBackend(() => createWebGPUBackend({ path: 'sgmv' }), {
  name: 'webgpu, SGMV path (node, dawn)',
  timeoutMs: 120_000,
  gpuMemory: 'deferred',
  leakBatches: 150,
  skip: {
    ...GPU_SKIPS,
    'engine determinism':
      'the Engine schedules the same way on either path; the default-path suite (conformance.test.ts) runs it on webgpu',
  },
  // The hostile sessions test the runtime's bookkeeping more than the kernels: the default-path
  // suite runs 5,000 steps on webgpu, and so does this path (SwiftShader is slow).
  hostileSteps: 5000,
});
