import '@tensorflow/tfjs-backend-cpu';
import { defineLoRABackend, type LoRABackend, registerLoRABackend } from '@lora/core/backend';
import { resolveTpuSimOptions } from './options.js';
import { TPU_SIM_EXPAND, TPU_SIM_SHRINK, tpuSimKernels } from './register.js';
import { TpuSim, type TpuSimStats } from './sim.js';

export { bf16Bits, bf16FromBits, roundBf16, roundBf16Array } from './bf16.js';
export {
  CALIBRATION_MODELS,
  GENAI_PERF_AXES,
  type HeatmapCell,
  heatmapCells,
  MEASURED,
  MLPERF_LENGTHS,
  type MlperfRow,
  measuredRunLoRA,
  mlperfRow,
  PRESET_VARIANTS,
  range,
} from './calibration.js';
export { CHIPS, type ChipSpec, DEFAULT_STEP_OVERHEAD_SECONDS } from './chips.js';
export {
  type CompileCalibration,
  type CompileCounts,
  type CompileSetup,
  calibrateCompileTime,
  compileSeconds,
  countCompiles,
  QWEN_2_5_3B_ONE_LAYER,
  REPORTED_WARMUP,
  SET_LORA_KINDS,
  servingTrace,
  warmupMapping,
} from './compile.js';
export { type CostTotals, estimateSeconds, type OpCost } from './cost.js';
export { type CrossoverPoint, crossoverFrontier, crossoverGrid, loraStepSeconds, powersOfTwo } from './crossover.js';
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
export type { TpuSimVariant } from './options.js';
export {
  FLAG_NAMES,
  PRESETS,
  type ResolvedTpuSimOptions,
  resolveTpuSimOptions,
  type TpuSimBackendOptions,
  type TpuSimFlags,
  type TpuSimPreset,
} from './options.js';
export type { DType, HbmArray } from './pallas/arrays.js';
export type { Dimension, OperandSpec, Program } from './pallas/interpreter.js';
export { type Block, type BlockSpec, type KernelDef, type KernelRun, ProgramCache, type StepContext } from './pallas/interpreter.js';
export { TPU_SIM_EXPAND, TPU_SIM_SHRINK, tpuSimKernels } from './register.js';
export { type SimExpandArgs, type SimShrinkArgs, TpuSim, type TpuSimStats } from './sim.js';
export {
  allGatherSeconds,
  allReduceSeconds,
  attentionCost,
  baseStepComponents,
  type ComponentCost,
  estimateStep,
  iciLinkBytesPerSecond,
  kvBytesPerToken,
  LoRAPriceCache,
  type LoRASetup,
  loraStepComponents,
  matmulCost,
  opSeconds,
  type StepEstimate,
  type StepSequence,
  weightBytesPerChip,
} from './step.js';
export type { CrossoverPanelData, HeatmapPanel } from './svg.js';
export { crossoverSvg, type SlowdownHeatmap, slowdownHeatmapSvg } from './svg.js';
export {
  defaultMaxNumBatchedTokens,
  defaultServingConfig,
  paddedRequests,
  paddedTokens,
  requestPaddings,
  type ServingConfig,
  tokenPaddings,
  type UsageContext,
  VLLM_TPU_DEFAULTS,
} from './vllm.js';
export {
  genaiPerfThroughput,
  kvCapacityTokens,
  mlperfOfflineStep,
  mlperfOfflineThroughput,
  type ThroughputResult,
  type Variant,
} from './workload.js';

/** The LoRA backend plus the simulator behind it (for cost inspection in tools and tests). */
export interface TpuSimBackend extends LoRABackend {
  /** The simulator every call of this backend runs on: its options, program cache, running totals and last call's ops. */
  readonly sim: TpuSim;
  /** Cost totals since the backend was created, plus compiles and VMEM peak: the simulator's `stats()`. */
  stats(): TpuSimStats;
}

/**
 * The TPU simulator backend: vLLM PR 15655's Pallas multi-LoRA kernels interpreted on tfjs "cpu" with
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
    hostMemory: true,
    appliesTokenScales: true,
    compilesPrograms: true,
    kernels: tpuSimKernels(),
    target: { shrink: TPU_SIM_SHRINK, expand: TPU_SIM_EXPAND, attrs: { sim } },
    install: '@tensorflow/tfjs-backend-cpu',
    // bf16 operands, f32 accumulation, bf16 kernel outputs (measured 4.2e-3 against float64).
    accuracy: 3e-2,
  });
  return { ...backend, sim, stats: () => sim.stats() };
}

registerLoRABackend('tpu-sim', createTpuSimBackend);
