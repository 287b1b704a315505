import { hostMemoryKernels } from '@lora/core/backend';
import type { KernelConfig } from '@tensorflow/tfjs-core';
import type { TpuSim } from './sim.js';

/**
 * tfjs kernels for the simulator, on tfjs "cpu". They have their own names (not core's
 * LoRAShrink/LoRAExpand) because @lora/backend-cpu registers those for the same tfjs backend and a
 * process may load both; and each call carries its simulator (flags, program cache, cost totals) as
 * an attribute (core's KernelTarget), so runtimes with different presets coexist.
 */
export const TPU_SIM_SHRINK = 'LoRATpuSimShrink';
/** tfjs kernel name of the simulator's expand, distinct from core's LoRAExpand for the reason given at {@link TPU_SIM_SHRINK}. */
export const TPU_SIM_EXPAND = 'LoRATpuSimExpand';

/**
 * The shrink and expand kernel configs for tfjs "cpu" (core's `hostMemoryKernels`: float32 data
 * read in place, results handed to tfjs): each runs the {@link TpuSim} carried in the call's target
 * attributes.
 */
export function tpuSimKernels(): KernelConfig[] {
  return hostMemoryKernels({
    backendName: 'cpu',
    shrinkName: TPU_SIM_SHRINK,
    expandName: TPU_SIM_EXPAND,
    shrink: ({ x, loraA, meta, scale, dims: { slots, rank, hidden }, target }) =>
      (target.sim as TpuSim).shrink({ x, hidden, loraA, slots, rank, meta, scale }),
    expand: ({ y, x, loraB, meta, outputSlices, offsetStart, addInputs, dims: { slots, rank, width }, target }) =>
      (target.sim as TpuSim).expand({ y, width, x, loraB, slots, rank, outputSlices, offsetStart, addInputs, meta }),
  });
}
