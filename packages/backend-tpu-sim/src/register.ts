import { expandKernelArgs, shrinkKernelArgs } from '@lora/core/backend';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import type { TpuSim } from './sim.js';

/**
 * tfjs kernels for the simulator, on tfjs "cpu". They have their own names (not core's
 * LoRAShrink/LoRAExpand) because @lora/backend-cpu registers those for the same tfjs backend and a
 * process may load both; and each call carries its simulator (flags, program cache, cost totals) as
 * an attribute (core's KernelTarget), so runtimes with different presets coexist. Inputs are read in place; outputs
 * are handed to the backend, so the engine tracks them like any op's output.
 */
export const TPU_SIM_SHRINK = 'LoRATpuSimShrink';
/** tfjs kernel name of the simulator's expand, distinct from core's LoRAExpand for the reason given at {@link TPU_SIM_SHRINK}. */
export const TPU_SIM_EXPAND = 'LoRATpuSimExpand';

const values = (backend: MathBackendCPU, t: TensorInfo): Float32Array => backend.data.get(t.dataId).values as Float32Array;

/**
 * The shrink and expand kernel configs for tfjs "cpu": each reads its tensors' float32 data in
 * place, runs the {@link TpuSim} carried in the call's target attributes and returns the result as
 * a new tensor (`[slices, tokens, rank]` for shrink, `y`'s shape for expand).
 */
export function tpuSimKernels(): KernelConfig[] {
  const shrink: KernelConfig = {
    kernelName: TPU_SIM_SHRINK,
    backendName: 'cpu',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const cpu = backend as MathBackendCPU;
      const { x, loraA, meta, scale, dims, target } = shrinkKernelArgs(inputs, attrs);
      const { slots, rank, hidden, slices, tokens } = dims;
      const out = (target.sim as TpuSim).shrink({
        x: values(cpu, x),
        hidden,
        loraA: loraA.map((a) => values(cpu, a)),
        slots,
        rank,
        meta,
        scale,
      });
      return cpu.makeTensorInfo([slices, tokens, rank], 'float32', out);
    },
  };
  const expand: KernelConfig = {
    kernelName: TPU_SIM_EXPAND,
    backendName: 'cpu',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const cpu = backend as MathBackendCPU;
      const { y, x, loraB, meta, outputSlices, offsetStart, addInputs, dims, target } = expandKernelArgs(inputs, attrs);
      const { slots, rank, width } = dims;
      const out = (target.sim as TpuSim).expand({
        y: values(cpu, y),
        width,
        x: values(cpu, x),
        loraB: loraB.map((b) => values(cpu, b)),
        slots,
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
