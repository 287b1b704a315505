import { describeBackend, GPU_SKIPS } from '@lora/conformance';
import { createWebGPUBackend } from './index.js';

// Node: Dawn + SwiftShader (software Vulkan): slow in absolute terms (a few ms per dispatch), hence
// the smaller leak runs: 1,000 tiny-Llama batches are 2–4 minutes of queued GPU work.
describeBackend(() => createWebGPUBackend(), {
  name: 'webgpu (node, dawn)',
  timeoutMs: 120_000,
  leakBatches: 150,
  gpuMemory: 'deferred',
  // Sizes are uniforms, so only baked variants compile: BGMV shrink and expand (vec4) × indexed or
  // single-slot, SGMV shrink and expand (for batches the auto path sends there), and the copy.
  maxPrograms: 7,
  skip: GPU_SKIPS,
  // The hostile sessions test the runtime's bookkeeping more than the kernels (cpu, tpu-sim and the
  // reference run the full 20,000 steps): two rounds of 50 sessions here (about 5,000 steps, ~15 s on
  // SwiftShader). A thorough run sets LORA_HOSTILE_STEPS=20000 (or more) for every backend.
  hostileSteps: 5000,
});
