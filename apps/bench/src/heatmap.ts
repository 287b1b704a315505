import { createLoRA, type LoRARuntime } from '@lora/core';
import { type CausalLM, type Chunk, decodeLoRAShare, type LoRAStepShare, type ModelConfig, Sequence } from '@lora/llama';
import { type DemoPreset, loadDemoModel, roundSpread } from '@lora/llama/demo';
import * as tf from '@tensorflow/tfjs-core';
import { median } from './measure.js';
import type { BackendSpec } from './methods.js';
import { registerBenchAdapters } from './model-adapters.js';

/** Rows and columns of the slowdown heatmap (vLLM PR 15655's GenAI-Perf figures: input length × concurrency). */
export interface HeatmapAxes {
  lengths: readonly number[];
  concurrency: readonly number[];
}

export const HEATMAPS: Record<'full' | 'quick' | 'gpu' | 'tiny', HeatmapAxes> = {
  full: { lengths: [128, 256, 512, 1024, 2048, 4096, 8192], concurrency: [1, 4, 16, 64] },
  quick: { lengths: [128, 256, 512, 1024], concurrency: [1, 4, 16, 64] },
  // Software-rendered GPUs (SwiftShader) take 0.4–7 s per decode step of the demo model.
  gpu: { lengths: [128, 512, 1024], concurrency: [1, 4, 16] },
  tiny: { lengths: [8, 32], concurrency: [1, 4] },
};

interface HeatmapCell {
  length: number;
  concurrency: number;
  /** Median ms of one decode forward with LoRA and of the same forward on the base model (interleaved rounds). */
  loraMs: number;
  baseMs: number;
  /** Measured cells: the median of the per-round `lora / base − 1`; priced cells: loraMs / baseMs − 1. */
  slowdown: number;
  /**
   * Measured cells: the interquartile range of the per-round slowdowns (each round times both
   * steps back to back, in alternating order), and how many rounds there were.
   */
  spread?: { low: number; high: number; rounds: number };
  /**
   * The spread reaches zero: a quarter of the rounds or more saw no cost, so the effect is not
   * told apart from noise. Reported as "within noise", never as a (negative) slowdown.
   */
  withinNoise?: boolean;
  /** What LoRA must cost in this step (`decodeLoRAShare`): bytes and FLOPs over the base step's. */
  inherent?: LoRAStepShare;
}

export interface HeatmapResult {
  backend: string;
  preset: string;
  adapters: number;
  /** The runtime's `maxLoraRank`: the largest of the adapters' ranks. */
  rank: number;
  /** The adapters' ranks when they are mixed (adapter i has `ranks[i % ranks.length]`). */
  ranks?: readonly number[];
  axes: HeatmapAxes;
  cells: HeatmapCell[];
  /** Cells not measured, and why (e.g. a KV cache over the memory limit). */
  skipped: Array<{ length: number; concurrency: number; reason: string }>;
  /** What a cell is, where it is not a measured decode forward of the demo model (the cost-model heatmap). */
  note?: string;
}

export interface HeatmapOptions {
  rounds: number;
  adapters: number;
  /** Rank of every adapter, and the runtime's `maxLoraRank`, unless `ranks` mixes them. */
  rank: number;
  /** Mixed ranks: adapter i has `ranks[i % ranks.length]`, padded to the largest (which is then `maxLoraRank`). */
  ranks?: readonly number[];
  /** Largest KV cache (all sequences, all layers) a cell may hold; bigger cells are skipped. */
  kvLimitBytes: number;
  onCell?: (label: string) => void;
}

/**
 * Rounds a short cell may take. A decode step of one sequence on the SmolLM2 preset (40 ms, most
 * of it the 113 MB LM head) varies by ±7 % from one step to the next: with at most 20 rounds the
 * 256 × 1 cell read +6.4 % [2.4, 11.8], where 200 rounds of the same step read 2.7 % and 3.0 % (two
 * runs) and 60 rounds 2.3 % (issue #17's concurrency-1 cells, docs/perf-notes.md).
 */
const MAX_ROUNDS = 60;
/** Milliseconds of LoRA steps a short cell takes rounds for, up to {@link MAX_ROUNDS}. */
const CELL_BUDGET_MS = 2000;
/**
 * Rounds a long cell takes, unless {@link LONG_CELL_BUDGET_MS} of LoRA steps run out first. Steps of
 * 0.4–4 s (many sequences, long caches) vary by ±10–25 % from round to round: with 5 rounds the
 * SmolLM2 heatmap read 24.4 % [7.1, 27.4] at 1024 × 16 and 26.3 % [12.9, 49.9] at 2048 × 64, where
 * 20 rounds of the same steps read 0.6 % [−2.6, 4.8] and −0.5 % [−2.8, 4.3] (docs/perf-notes.md).
 */
const LONG_CELL_ROUNDS = 20;
const LONG_CELL_BUDGET_MS = 60_000;
/** Fewer rounds give no spread worth the name (issue #17: ≥ 5 interleaved rounds). */
const MIN_ROUNDS = 5;

/** Whether a cell takes another round, after `r` rounds whose LoRA steps took `spent` ms: a budget fixed in advance, never the result so far. */
export function anotherRound(r: number, spent: number, rounds: number): boolean {
  if (r < Math.max(rounds, MIN_ROUNDS)) return true;
  if (r < LONG_CELL_ROUNDS && spent < LONG_CELL_BUDGET_MS) return true;
  return r < MAX_ROUNDS && spent < CELL_BUDGET_MS;
}

const kvBytes = (c: ModelConfig, length: number, concurrency: number): number =>
  4 * 2 * c.numHiddenLayers * c.numKeyValueHeads * c.headDim * (length + 1) * concurrency;

/**
 * The LoRA slowdown of one demo-model forward at each input length × concurrency: a decode step of
 * `concurrency` sequences whose KV caches already hold `length` tokens (the forward a server spends
 * most of its steps in), each sequence on its own adapter (adapters cycle when there are more
 * sequences than adapters), with LoRA on every linear module, against the same step on the base
 * model. The caches are filled with random keys and values instead of running prefill: attention
 * costs the same whatever the cache holds, and an 8k × 64 prefill would take hours on a CPU.
 * Browser-safe: the bench page runs it for webgl and webgpu in Chromium.
 */
export async function runHeatmap(spec: BackendSpec, preset: DemoPreset, axes: HeatmapAxes, opts: HeatmapOptions): Promise<HeatmapResult> {
  const rt = await createLoRA({
    backend: spec.backend,
    backendOptions: spec.backendOptions,
    maxLoras: opts.adapters,
    maxLoraRank: Math.max(opts.rank, ...(opts.ranks ?? [])),
    maxCpuLoras: opts.adapters,
    maxNumTokens: Math.max(16, ...axes.concurrency),
  });
  // Every timed step appends a token to each cache: room for the warm-up and up to MAX_ROUNDS rounds.
  const maxPositionEmbeddings = Math.max(...axes.lengths) + 2 * (Math.max(opts.rounds, MAX_ROUNDS) + 1);
  let model: CausalLM;
  try {
    ({ model } = await loadDemoModel({ ...preset, maxPositionEmbeddings }, rt));
  } catch (err) {
    rt.dispose();
    throw err;
  }
  const config = model.config;
  const result: HeatmapResult = {
    backend: spec.label,
    preset: preset.name,
    adapters: opts.adapters,
    rank: Math.max(opts.rank, ...(opts.ranks ?? [])),
    ...(opts.ranks === undefined ? {} : { ranks: opts.ranks }),
    axes,
    cells: [],
    skipped: [],
  };
  try {
    const ids = registerBenchAdapters(rt, config, opts.adapters, opts.ranks ?? [opts.rank]);
    for (const length of axes.lengths) {
      for (const concurrency of axes.concurrency) {
        const bytes = kvBytes(config, length, concurrency);
        if (bytes > opts.kvLimitBytes) {
          result.skipped.push({
            length,
            concurrency,
            reason: `KV cache ${(bytes / 2 ** 30).toFixed(1)} GB > ${(opts.kvLimitBytes / 2 ** 30).toFixed(1)} GB limit`,
          });
        } else {
          const cell = await measureCell(model, rt, ids, length, concurrency, opts.rounds);
          // The sequences cycle through the adapters as measureCell assigns them.
          const applied = Array.from({ length: concurrency }, (_, i) => rt.adapters.get(ids[i % ids.length] as string) ?? null);
          cell.inherent = decodeLoRAShare(config, { length, adapters: applied });
          result.cells.push(cell);
        }
        opts.onCell?.(`heatmap ${spec.label}: input ${length}, concurrency ${concurrency}`);
      }
    }
  } finally {
    model.dispose();
    rt.dispose();
  }
  return result;
}

async function measureCell(
  model: CausalLM,
  rt: LoRARuntime,
  ids: readonly string[],
  length: number,
  concurrency: number,
  rounds: number,
): Promise<HeatmapCell> {
  const c = model.config;
  const kvShape: [number, number, number] = [c.numKeyValueHeads, length, c.headDim];
  // One random cache per layer, cloned into every sequence (clones share memory until a step
  // appends to them).
  const templates = Array.from({ length: c.numHiddenLayers }, () => ({
    k: tf.randomNormal(kvShape) as tf.Tensor3D,
    v: tf.randomNormal(kvShape) as tf.Tensor3D,
  }));
  const seqs = Array.from({ length: concurrency }, () => {
    // Sequence's cache is public so that it can be restored: here, filled as if prefill had run.
    const seq = new Sequence();
    for (const t of templates) seq.kv.push({ k: tf.clone(t.k), v: tf.clone(t.v) });
    seq.length = length;
    return seq;
  });
  tf.dispose(templates.flatMap((t) => [t.k, t.v]));
  const adapters = seqs.map((_, i) => ids[i % ids.length] as string);
  const step = async (withLoRA: boolean): Promise<number> => {
    const chunks: Chunk[] = seqs.map((seq, i) => ({ seq, tokens: Int32Array.of((i * 37 + seq.length) % c.vocabSize) }));
    const t0 = performance.now();
    rt.adapters.setBatch(
      withLoRA ? adapters : adapters.map(() => null),
      chunks.map(() => 1),
    );
    await model.forward(chunks);
    return performance.now() - t0;
  };
  try {
    // Warm-up: the first step at a new batch size allocates, packs and compiles.
    await step(true);
    await step(false);
    const lora: number[] = [];
    const base: number[] = [];
    // Every cell takes at least 20 rounds unless a minute of LoRA steps runs out first (then at
    // least 5), short ones up to 60 while they take under 2 s: a step's noise would otherwise swamp
    // a slowdown of a few percent. The order alternates, so neither kind always runs second
    // (warmer caches, a frequency step).
    for (let r = 0, spent = 0; anotherRound(r, spent, rounds); r++) {
      if (r % 2 === 0) {
        lora.push(await step(true));
        base.push(await step(false));
      } else {
        base.push(await step(false));
        lora.push(await step(true));
      }
      spent += lora.at(-1) as number;
    }
    const loraMs = median(lora);
    const baseMs = median(base);
    const perRound = lora.map((t, i) => t / (base[i] as number) - 1);
    const s = roundSpread(perRound);
    // The slowdown is the median of the per-round ratios, the statistic its range brackets: the ratio
    // of the two medians can fall below the range (a negative "slowdown" beside a positive range).
    return {
      length,
      concurrency,
      loraMs,
      baseMs,
      slowdown: s.median,
      spread: { low: s.low, high: s.high, rounds: s.rounds },
      withinNoise: s.withinNoise,
    };
  } finally {
    for (const seq of seqs) seq.dispose();
  }
}
