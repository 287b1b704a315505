import type { LoRAMapping } from '@lora/core';
import type { ChipSpec } from './chips.js';
import { resolveTpuSimOptions } from './options.js';
import { TpuSim } from './sim.js';

/**
 * Whole-model estimates from the cost model: the LoRA kernels of one Llama step (every layer's
 * q/k/v, o, gate/up and down) and the base step they are compared with. Used by the ablation
 * report and by the benchmark's slowdown heatmap.
 */

/** A Llama-shaped model as the cost model sees it. */
export interface LlamaShape {
  name: string;
  hidden: number;
  q: number;
  kv: number;
  intermediate: number;
  layers: number;
  vocab: number;
  /** Tensor-parallel chips: each holds 1/tp of every sharded dimension. */
  tp: number;
}

export const LLAMA_3_1_8B: LlamaShape = {
  name: 'Llama-3.1-8B, 1× v6e',
  hidden: 4096,
  q: 4096,
  kv: 1024,
  intermediate: 14336,
  layers: 32,
  vocab: 128256,
  tp: 1,
};

export const LLAMA_3_1_70B_TP8: LlamaShape = {
  name: 'Llama-3.1-70B, 8× v6e (TP 8)',
  hidden: 8192,
  q: 8192,
  kv: 1024,
  intermediate: 28672,
  layers: 80,
  vocab: 128256,
  tp: 8,
};

/** One LoRA-wrapped linear on one chip: shrink input width and the expand output slices. */
export interface LoRAModule {
  name: string;
  input: number;
  slices: number[];
}

/** vLLM's targets on every layer; column-parallel B and row-parallel A are sharded across chips. */
export function loraModules(m: LlamaShape): LoRAModule[] {
  const s = (n: number) => n / m.tp;
  return [
    { name: 'qkv_proj', input: m.hidden, slices: [s(m.q), s(m.kv), s(m.kv)] },
    { name: 'o_proj', input: s(m.q), slices: [m.hidden] },
    { name: 'gate_up_proj', input: m.hidden, slices: [s(m.intermediate), s(m.intermediate)] },
    { name: 'down_proj', input: s(m.intermediate), slices: [m.hidden] },
  ];
}

/** Stacks the kernels see: `slots` adapters of `rank`. */
export interface StackShape {
  adapters: number;
  rank: number;
}

const empty = new Float32Array(0);

/** Prices one layer's LoRA calls (shrink + expand per module) in a cost-only simulator. */
export function priceLayer(sim: TpuSim, m: LlamaShape, meta: LoRAMapping, stack: StackShape): void {
  for (const mod of loraModules(m)) {
    const loraA = mod.slices.map(() => empty);
    sim.shrink({ x: empty, hidden: mod.input, loraA, slots: stack.adapters, rank: stack.rank, meta, scale: 1 });
    sim.expand({
      y: empty,
      width: mod.slices.reduce((a, b) => a + b, 0),
      x: empty,
      loraB: loraA,
      slots: stack.adapters,
      rank: stack.rank,
      outputSlices: mod.slices,
      offsetStart: 0,
      addInputs: true,
      meta,
    });
  }
}

/**
 * Estimated LoRA cost of one model step (all layers, all modules) under `options` (the backend's
 * options: preset, flags, chip). `seconds` leaves out the float32-API glue a bf16 TPU pipeline
 * fuses or does not need; `secondsWithApiGlue` has it.
 */
export function estimateLoRAStep(m: LlamaShape, options: Record<string, unknown>, meta: LoRAMapping, stack: StackShape) {
  const sim = new TpuSim(resolveTpuSimOptions(options), { costOnly: true });
  priceLayer(sim, m, meta, stack);
  const t = sim.totals;
  return {
    seconds: t.kernelMicros * 1e-6 * m.layers,
    secondsWithApiGlue: t.estimatedMicros * 1e-6 * m.layers,
    hbmBytes: t.hbmBytes * m.layers,
    mxuFlops: t.mxuFlops * m.layers,
    usefulFlops: t.usefulFlops * m.layers,
    gridSteps: t.gridSteps * m.layers,
    stepsSkipped: t.stepsSkipped * m.layers,
  };
}

export interface BaseStepShape {
  /** Tokens through the linear layers. */
  tokens: number;
  /** Rows through lm_head (decode: every token; prefill: the last of each request). */
  sampled: number;
  /** Cached tokens the step's attention reads, summed over its sequences (decode: concurrency × input length). */
  contextTokens?: number;
}

/**
 * Base step on one chip, a roofline: its bf16 weights read once, plus (with `contextTokens`) the
 * bf16 KV cache attention reads, against the linear layers', lm_head's and attention's FLOPs.
 */
export function estimateBaseStep(m: LlamaShape, chip: ChipSpec, s: BaseStepShape) {
  const perLayer = m.hidden * (m.q + 2 * m.kv) + m.q * m.hidden + 3 * m.hidden * m.intermediate;
  const linear = (perLayer * m.layers) / m.tp;
  const weights = linear + (2 * m.vocab * m.hidden) / m.tp; // + embedding and lm_head
  const context = s.contextTokens ?? 0;
  // K and V of every cached token, every layer; q·K and p·V: 2 FLOPs × 2 products per cached token and query width.
  const kvBytes = (2 * 2 * context * m.kv * m.layers) / m.tp;
  const attentionFlops = (4 * context * m.q * m.layers) / m.tp;
  const flops = 2 * s.tokens * linear + (2 * s.sampled * m.vocab * m.hidden) / m.tp + attentionFlops;
  const bytes = 2 * weights + kvBytes;
  return { seconds: Math.max(flops / chip.peakBf16Flops, bytes / chip.hbmBytesPerSecond), flops, bytes };
}
