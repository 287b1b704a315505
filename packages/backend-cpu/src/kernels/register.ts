import { hostMemoryKernels } from '@lora/core/backend';
import type { KernelConfig } from '@tensorflow/tfjs-core';
import { expandSegments } from './expand.js';
import { shrinkSegments } from './shrink.js';

/**
 * tfjs kernels for the "cpu" backend: LoRAShrink and LoRAExpand running {@link shrinkSegments} and
 * {@link expandSegments} on the tensors' Float32Arrays (core's `hostMemoryKernels` reads them in
 * place and hands the outputs to tfjs); expand works on a copy of y, never on y itself.
 *
 * @param backendName - The tfjs backend to register them for (default "cpu"); its tensors must
 *   live in host memory as Float32Arrays (a `MathBackendCPU`).
 * @returns The shrink and expand `KernelConfig`s, for `KernelBackendSpec.kernels`.
 */
export function cpuKernels(backendName = 'cpu'): KernelConfig[] {
  return hostMemoryKernels({
    backendName,
    shrink: ({ x, loraA, meta, scale, dims: { slices, tokens, hidden, rank } }) => {
      const out = new Float32Array(slices * tokens * rank);
      shrinkSegments({ out, x, loraA, hidden, rank, meta, scale });
      return out;
    },
    expand: ({ y, x, loraB, meta, outputSlices, offsetStart, addInputs, dims: { width, rank } }) => {
      const out = y.slice();
      expandSegments({ out, x, loraB, width, rank, outputSlices, offsetStart, addInputs, meta });
      return out;
    },
  });
}
