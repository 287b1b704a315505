import { hostMemoryKernels, LORA_LINEAR } from '@lora/core/backend';
import type { KernelConfig } from '@tensorflow/tfjs-core';
import { expandSegments } from './expand.js';
import { shrinkSegments } from './shrink.js';

/**
 * tfjs kernels for the "cpu" backend: LoRAShrink, LoRAExpand and the two fused (LoRAShrinkExpand), running {@link shrinkSegments} and
 * {@link expandSegments} on the tensors' Float32Arrays (core's `hostMemoryKernels` reads them in
 * place and hands the outputs to tfjs); expand works on a copy of y, never on y itself.
 *
 * @param backendName - The tfjs backend to register them for (default "cpu"); its tensors must
 *   live in host memory as Float32Arrays (a `MathBackendCPU`).
 * @returns The shrink, expand and fused `KernelConfig`s, for `KernelBackendSpec.kernels`.
 */
export function cpuKernels(backendName = 'cpu'): KernelConfig[] {
  return hostMemoryKernels({
    backendName,
    linearName: LORA_LINEAR,
    shrink: ({ x, loraA, meta, scale, slotRanks, dims: { slices, tokens, hidden, rank } }) => {
      const out = new Float32Array(slices * tokens * rank);
      shrinkSegments({ out, x, loraA, hidden, rank, meta, scale, slotRanks });
      return out;
    },
    expand: ({ y, x, loraB, meta, outputSlices, offsetStart, addInputs, slotRanks, bLayout, dims: { width, rank } }) => {
      const out = y.slice();
      expandSegments({ out, x, loraB, width, rank, outputSlices, offsetStart, addInputs, meta, slotRanks, bLayout });
      return out;
    },
  });
}
