import '@tensorflow/tfjs-backend-cpu';
import { defineLoRABackend, type LoRABackend, registerLoRABackend } from '@lora/core';
import { resolveTpuSimOptions } from './options.js';
import { TPU_SIM_EXPAND, TPU_SIM_SHRINK, tpuSimKernels } from './register.js';
import { TpuSim, type TpuSimStats } from './sim.js';

export { bf16Bits, bf16FromBits, roundBf16, roundBf16Array } from './bf16.js';
export { CHIPS, type ChipSpec, DEFAULT_STEP_OVERHEAD_SECONDS } from './chips.js';
export { type CostTotals, estimateSeconds, type OpCost } from './cost.js';
export {
  type BaseStepShape,
  estimateBaseStep,
  estimateLoRAStep,
  LLAMA_3_1_8B,
  LLAMA_3_1_70B_TP8,
  type LlamaShape,
  type LoRAModule,
  loraModules,
  priceLayer,
  type StackShape,
} from './estimate.js';
export { type Lanes, laneLayout } from './kernels/plan.js';
export {
  FLAG_NAMES,
  PRESETS,
  type ResolvedTpuSimOptions,
  resolveTpuSimOptions,
  type TpuSimBackendOptions,
  type TpuSimFlags,
  type TpuSimPreset,
} from './options.js';
export { type Block, type BlockSpec, type KernelDef, type KernelRun, ProgramCache, type StepContext } from './pallas/interpreter.js';
export { TPU_SIM_EXPAND, TPU_SIM_SHRINK, tpuSimKernels } from './register.js';
export { type SimExpandArgs, type SimShrinkArgs, TpuSim, type TpuSimStats } from './sim.js';

/** The LoRA backend plus the simulator behind it (for cost inspection in tools and tests). */
export interface TpuSimBackend extends LoRABackend {
  readonly sim: TpuSim;
  stats(): TpuSimStats;
}

/**
 * The TPU simulator backend: the seed's Pallas multi-LoRA kernels interpreted on tfjs "cpu" with
 * bf16 operands and f32 accumulation, plus a TPU v5e/v6e cost model in `stats()`.
 * `backendOptions` (see TpuSimBackendOptions): `{ preset: 'all-on' | 'all-off' | 'einsum',
 * flags: { blockTuning, fastMask, blockSkip, laning, splitShrinkExpand, singleNoMask,
 * preTransposedExpand, bucketing }, chip: 'v5e' | 'v6e', stepOverheadMicros }`.
 * `createLoRA({ backend: 'tpu-sim' })` finds it once this module is imported.
 */
export function createTpuSimBackend(options: Readonly<Record<string, unknown>> = {}): TpuSimBackend {
  const sim = new TpuSim(resolveTpuSimOptions(options));
  const backend = defineLoRABackend({
    name: 'tpu-sim',
    tfBackend: 'cpu',
    kernels: tpuSimKernels(),
    target: { shrink: TPU_SIM_SHRINK, expand: TPU_SIM_EXPAND, attrs: { sim } },
    install: '@tensorflow/tfjs-backend-cpu',
    // bf16 operands, f32 accumulation (measured 4.9e-3 against float64).
    accuracy: 3e-2,
  });
  return { ...backend, sim, stats: () => sim.stats() };
}

registerLoRABackend('tpu-sim', createTpuSimBackend);
