import { describeBackend, GPU_SKIPS } from '@lora/conformance';
import { createWebGPUBackend } from './index.js';

// Node: Dawn + SwiftShader (software Vulkan): slow in absolute terms, hence the smaller leak runs.
describeBackend(() => createWebGPUBackend(), {
  name: 'webgpu (node, dawn)',
  timeoutMs: 120_000,
  gpuMemory: 'deferred',
  // Sizes are uniforms, so only baked variants compile: BGMV shrink and expand (vec4) × indexed or
  // single-slot, SGMV shrink and expand (for batches the auto path sends there), and the copy.
  maxPrograms: 7,
  skip: GPU_SKIPS,
  // The hostile sessions test the runtime's bookkeeping more than the kernels (cpu, tpu-sim and the
  // reference run the full 20,000 steps): one round of 50 sessions here (about 2,500 steps). On
  // SwiftShader a session's cost depends on the batch sizes fast-check draws, so a run takes 1–5
  // minutes. A thorough run sets LORA_HOSTILE_STEPS=20000 (or more) for every backend.
  hostileSteps: 2000,
});
