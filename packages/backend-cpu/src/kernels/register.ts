import { expandKernelArgs, LORA_EXPAND, LORA_SHRINK, shrinkKernelArgs } from '@lora/core/backend';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import { expandSegments } from './expand.js';
import { shrinkSegments } from './shrink.js';

function values(backend: MathBackendCPU, t: TensorInfo): Float32Array {
  return backend.data.get(t.dataId).values as Float32Array;
}

/**
 * tfjs kernels for the "cpu" backend: LoRAShrink and LoRAExpand running {@link shrinkSegments} and
 * {@link expandSegments}. They read tensors' Float32Arrays in place (zero copy) and hand their
 * outputs to the backend, so the engine tracks them like any op's output; expand works on a copy
 * of y, never on y itself.
 *
 * @param backendName - The tfjs backend to register them for (default "cpu"); it must be a
 *   `MathBackendCPU`, since the kernels read its `data` map directly.
 * @returns The shrink and expand `KernelConfig`s, for `KernelBackendSpec.kernels`.
 */
export function cpuKernels(backendName = 'cpu'): KernelConfig[] {
  const shrink: KernelConfig = {
    kernelName: LORA_SHRINK,
    backendName,
    kernelFunc: ({ inputs, attrs, backend }) => {
      const cpu = backend as MathBackendCPU;
      const { x, loraA, meta, scale, dims } = shrinkKernelArgs(inputs, attrs);
      const { slices, tokens, hidden, rank } = dims;
      const out = new Float32Array(slices * tokens * rank);
      shrinkSegments({ out, x: values(cpu, x), loraA: loraA.map((a) => values(cpu, a)), hidden, rank, meta, scale });
      return cpu.makeTensorInfo([slices, tokens, rank], 'float32', out);
    },
  };
  const expand: KernelConfig = {
    kernelName: LORA_EXPAND,
    backendName,
    kernelFunc: ({ inputs, attrs, backend }) => {
      const cpu = backend as MathBackendCPU;
      const { y, x, loraB, meta, outputSlices, offsetStart, addInputs, dims } = expandKernelArgs(inputs, attrs);
      const out = values(cpu, y).slice();
      const { width, rank } = dims;
      expandSegments({
        out,
        x: values(cpu, x),
        loraB: loraB.map((b) => values(cpu, b)),
        width,
        rank,
        outputSlices,
        offsetStart,
        addInputs,
        meta,
      });
      return cpu.makeTensorInfo(y.shape, 'float32', out);
    },
  };
  return [shrink, expand];
}
