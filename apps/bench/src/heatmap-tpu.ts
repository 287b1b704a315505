import { CHIPS, estimateBaseStep, estimateLoRAStep, LLAMA_3_1_8B } from '@lora/backend-tpu-sim';
import { computeMapping } from '@lora/core/backend';
import type { HeatmapAxes, HeatmapResult } from './heatmap.js';

/**
 * The TPU simulator's heatmap comes from its cost model, not from wall-clock time (which would
 * time the simulator): the estimated slowdown of a Llama-3.1-8B decode step on one v6e at each
 * input length × concurrency, with `concurrency` sequences on up to `adapters` adapters. The base
 * step reads the bf16 weights and the sequences' KV caches; LoRA is vLLM PR 15655's kernels under
 * `preset` (all-on: its final Pallas kernels; einsum: what vLLM merged).
 */
export function tpuSimHeatmap(axes: HeatmapAxes, preset: 'all-on' | 'einsum', adapters = 8, rank = 16): HeatmapResult {
  const model = LLAMA_3_1_8B;
  const result: HeatmapResult = {
    backend: `tpu-sim (${preset}, v6e cost model)`,
    preset: model.name,
    adapters,
    rank,
    axes,
    cells: [],
    skipped: [],
    note: 'Each cell: estimated time of one decode step of that many sequences whose KV caches hold that many tokens, with LoRA / on the base model − 1 (cost model: weights and KV cache read at HBM bandwidth vs FLOPs; LoRA kernels as the simulator prices them).',
  };
  for (const length of axes.lengths) {
    for (const concurrency of axes.concurrency) {
      const slots = Int32Array.from({ length: concurrency }, (_, i) => i % adapters);
      const meta = computeMapping(slots, { maxLoras: adapters, maxNumTokens: 8192 });
      const lora = estimateLoRAStep(model, { preset, chip: 'v6e' }, meta, { adapters, rank }).seconds;
      const base = estimateBaseStep(model, CHIPS.v6e, {
        tokens: concurrency,
        sampled: concurrency,
        contextTokens: concurrency * length,
      }).seconds;
      result.cells.push({ length, concurrency, loraMs: (base + lora) * 1e3, baseMs: base * 1e3, slowdown: lora / base });
    }
  }
  return result;
}
