import { describeBackend } from '@lora/conformance';
import { createWebGPUBackend } from './index.js';

// Node: Dawn + SwiftShader (software Vulkan): slow in absolute terms, hence the smaller leak runs.
describeBackend(() => createWebGPUBackend(), {
  name: 'webgpu (node, dawn)',
  timeoutMs: 120_000,
  skip: { 'token id outside the vocabulary': 'token ids are not read back from the GPU to be range-checked' },
});
