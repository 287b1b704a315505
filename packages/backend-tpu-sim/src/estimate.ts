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
  /** Label for reports; also part of the LoRA price cache key. */
  name: string;
  /** Hidden size: the residual stream's width, the embedding's and lm_head's feature width. */
  hidden: number;
  /** Output width of q_proj (query heads × head dim), before tensor-parallel sharding. */
  q: number;
  /** Output width of k_proj and of v_proj each (KV heads × head dim), before sharding; sets the KV-cache bytes per token. */
  kv: number;
  /** MLP intermediate size: output width of gate_proj and of up_proj each, input width of down_proj. */
  intermediate: number;
  /** Decoder layers. */
  layers: number;
  /** Vocabulary size: rows of the embedding, columns of lm_head. */
  vocab: number;
  /** Tensor-parallel chips: each holds 1/tp of every sharded dimension. */
  tp: number;
}

/** Llama-3.1-8B on one v6e: 32 query and 8 KV heads of 128, intermediate 14336, 32 layers. */
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

/** Llama-3.1-70B sharded tensor-parallel over 8 v6e chips: 64 query and 8 KV heads of 128, intermediate 28672, 80 layers. */
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
  /** vLLM's module name: qkv_proj, o_proj, gate_up_proj or down_proj. */
  name: string;
  /** Shrink contraction width on one chip: the module's input features (sharded for row-parallel o_proj and down_proj). */
  input: number;
  /** Expand output width of each slice on one chip (sharded for column-parallel qkv_proj and gate_up_proj), e.g. q, k, v. */
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
  /** Adapter slots per stack (`max_loras`); the simulator adds the zero slot. */
  adapters: number;
  /** The stacks' rank (`max_lora_rank`). */
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
    /** LoRA time of the step without the float32-API glue ops, seconds. */
    seconds: t.kernelMicros * 1e-6 * m.layers,
    /** LoRA time of the step with the float32-API glue ops, seconds. */
    secondsWithApiGlue: t.estimatedMicros * 1e-6 * m.layers,
    /** HBM bytes of every LoRA op (glue included). */
    hbmBytes: t.hbmBytes * m.layers,
    /** MXU FLOPs issued, padding and masked-out work included. */
    mxuFlops: t.mxuFlops * m.layers,
    /** FLOPs the LoRA math needs: 2 · rank · features per token with an adapter, per slice. */
    usefulFlops: t.usefulFlops * m.layers,
    /** Grid steps of every op (an XLA op counts one). */
    gridSteps: t.gridSteps * m.layers,
    /** Grid steps that issued no matmul (block skipping). */
    stepsSkipped: t.stepsSkipped * m.layers,
  };
}

/** The tokens of one base step, as {@link estimateBaseStep} prices them. */
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
  return {
    /** Roofline time of the step: max(FLOPs / peak, bytes / HBM bandwidth), seconds. */
    seconds: Math.max(flops / chip.peakBf16Flops, bytes / chip.hbmBytesPerSecond),
    /** FLOPs of the linear layers, lm_head and attention. */
    flops,
    /** HBM bytes: bf16 weights once plus the KV cache attention reads. */
    bytes,
  };
}
