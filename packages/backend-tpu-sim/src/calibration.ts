import { CHIPS } from './chips.js';
import { LLAMA_3_1_8B, LLAMA_3_1_70B_TP8, type LlamaShape } from './estimate.js';
import { LoRAPriceCache, type LoRASetup } from './step.js';
import { defaultServingConfig, VLLM_TPU_DEFAULTS } from './vllm.js';
import { genaiPerfThroughput, mlperfOfflineThroughput, type Variant } from './workload.js';

/**
 * The measurements of the vLLM TPU multi-LoRA work (vLLM PR 15655 thread, taken with that PR's
 * Pallas kernels on TPU v6e) and the runs that reproduce them in the model.
 *
 * Measured (as quoted in issue #21 from the PR 15655 thread):
 * - MLPerf throughput, Llama-3.1-8B on 1× v6e: 1621.62 tok/s without LoRA, 1426.01 with (−12.1 %).
 * - MLPerf throughput, Llama-3.1-70B on 8× v6e: 432.96 → 326.71 tok/s (−24.5 %).
 * - GenAI-Perf heatmaps (fixed input and output lengths, inputs 128…8k × concurrency; comment by
 *   amanocha quoting the PR's benchmark write-up): 8B on 1× v6e "varies from −8.4% to −23.9%";
 *   70B on 8× v6e from −20.7 % to −46.3 %.
 */
export const MEASURED = Object.freeze({
  /** MLPerf throughput, output tokens/s, per model. */
  mlperf: {
    /** Llama-3.1-8B on 1× v6e. */
    '8b': {
      /** Without LoRA, tok/s. */
      base: 1621.62,
      /** With LoRA (vLLM PR 15655's Pallas kernels), tok/s. */
      lora: 1426.01,
    },
    /** Llama-3.1-70B on 8× v6e. */
    '70b': {
      /** Without LoRA, tok/s. */
      base: 432.96,
      /** With LoRA (vLLM PR 15655's Pallas kernels), tok/s. */
      lora: 326.71,
    },
  },
  /** GenAI-Perf heatmaps: [best, worst] throughput change with LoRA (LoRA / base − 1) over the cells, per model. */
  heatmap: {
    /** Llama-3.1-8B on 1× v6e. */
    '8b': [-0.084, -0.239] as const,
    /** Llama-3.1-70B on 8× v6e. */
    '70b': [-0.207, -0.463] as const,
  },
});

/**
 * Workload of the MLPerf rows: MLPerf Inference's Llama-2-70B task (OpenOrca, 24,576 queries,
 * prompts ≤ 1024 tokens: mlcommons/inference language/llama2-70b/README.md, processorca.py
 * `--seqlen_limit=1024`). Output: 294.45 tokens per sample, the reference's accuracy target
 * ("Tokens per sample: 294.45", same README, section "Accuracy Target"; Llama-2 tokenizer). The
 * mean prompt length is not published next to it; this model takes it equal to the output mean
 * (an assumption, with a sensitivity check at 128 and 1024 in the report). The vLLM TPU runs
 * retokenise the text with the Llama-3 tokenizer (vllm benchmarks' MLPerfDataset tokenizes
 * `question`/`output` with the served model's tokenizer), which shortens both by the tokenizers'
 * ratio; the slowdown depends on the ratio of prompt to output, which that leaves unchanged.
 */
export const MLPERF_LENGTHS: Readonly<{
  /** Mean prompt tokens per sample (assumed equal to the output mean). */
  input: number;
  /** Mean output tokens per sample (the reference's 294.45). */
  output: number;
}> = Object.freeze({ input: 294.45, output: 294.45 });

/**
 * GenAI-Perf heatmap axes. The PR's figures are images; their exact concurrency axis and fixed
 * output length are not in the text. The model uses the inputs the text names (128 … 8k, powers of
 * two), this project's heatmap concurrencies (1, 4, 16, 64) and a fixed output of 128 tokens
 * (an assumption, with a sensitivity check in the report).
 */
export const GENAI_PERF_AXES = Object.freeze({
  /** Fixed input lengths, tokens: the heatmap's columns. */
  lengths: [128, 256, 512, 1024, 2048, 4096, 8192] as readonly number[],
  /** Concurrent clients: the heatmap's rows. */
  concurrency: [1, 4, 16, 64] as readonly number[],
  /** Fixed output length, tokens (assumed). */
  output: 128,
});

/** LoRA setup of the measured runs: vLLM's defaults (max_loras 1, rank 16), embedding LoRA on, logits LoRA off (disabled by PR 15655). */
export function measuredRunLoRA(preset: 'all-on' | 'einsum' | 'all-off', overrides: Partial<LoRASetup> = {}): LoRASetup {
  return {
    options: { preset },
    maxLoras: VLLM_TPU_DEFAULTS.maxLoras,
    rank: VLLM_TPU_DEFAULTS.maxLoraRank,
    logits: false,
    embedding: true,
    ...overrides,
  };
}

/**
 * What every calibration run prices, base first (changes are relative to it): no LoRA, then the
 * 'all-on', 'einsum' and 'all-off' presets with the measured runs' LoRA setup ({@link measuredRunLoRA}).
 */
export const PRESET_VARIANTS: readonly Variant[] = Object.freeze([
  { label: 'base' },
  { label: 'all-on', lora: measuredRunLoRA('all-on') },
  { label: 'einsum', lora: measuredRunLoRA('einsum') },
  { label: 'all-off', lora: measuredRunLoRA('all-off') },
]);

/** The models of the measured runs, keyed as in {@link MEASURED}: Llama-3.1-8B on one v6e, Llama-3.1-70B at TP 8 over eight. */
export const CALIBRATION_MODELS: Readonly<Record<'8b' | '70b', LlamaShape>> = Object.freeze({
  '8b': LLAMA_3_1_8B,
  '70b': LLAMA_3_1_70B_TP8,
});

/** Throughput change with LoRA (LoRA / base − 1) of each LoRA variant. */
const changes = (tps: readonly number[]): number[] => tps.slice(1).map((t) => t / (tps[0] as number) - 1);

/** One MLPerf row of the calibration: the measured throughput change with LoRA next to the modelled ones, and the schedule behind them. */
export interface MlperfRow {
  /** Which measured run: Llama-3.1-8B on 1× v6e or Llama-3.1-70B on 8× v6e. */
  readonly model: '8b' | '70b';
  /** Measured throughput change with LoRA (LoRA / base − 1), e.g. −0.121. */
  readonly measured: number;
  /** all-on, einsum, all-off. */
  readonly modelled: readonly number[];
  /** Modelled output tokens per second without LoRA. */
  readonly baseTokensPerSecond: number;
  /** Measured output tokens per second without LoRA ({@link MEASURED}). */
  readonly measuredBaseTokensPerSecond: number;
  /** Modelled seconds of one steady-state step for each variant, base first. */
  readonly stepSeconds: readonly number[];
  /** Output tokens one steady-state step emits (decoders plus finished prompts). */
  readonly outputTokensPerStep: number;
  /** The LoRA kernels' time on top of the base step the measurement implies (measured tok/s at the modelled schedule). */
  readonly measuredBaseBracket: readonly number[];
  /** Requests in the running set: max_num_seqs or what the KV cache holds, whichever is smaller. */
  readonly running: number;
  /** Scheduled (unpadded) tokens per step. */
  readonly scheduledTokens: number;
}

/**
 * Models one MLPerf row: MLPerf offline in steady state on v6e under the `LLM` class's serving
 * defaults, one adapter, compared with {@link MEASURED}.
 * @param lengths - mean input and output tokens per sample
 * @param variants - what to price, base first (changes are relative to `variants[0]`)
 * @param cache - shares LoRA step prices across calls with the same shapes
 */
export function mlperfRow(
  model: '8b' | '70b',
  lengths: { input: number; output: number } = MLPERF_LENGTHS,
  variants = PRESET_VARIANTS,
  cache = new LoRAPriceCache(),
): MlperfRow {
  const m = CALIBRATION_MODELS[model];
  const r = mlperfOfflineThroughput(m, CHIPS.v6e, defaultServingConfig('v6e', 'LLM_CLASS'), lengths, 1, variants, cache);
  const measured = MEASURED.mlperf[model];
  const measuredBaseStep = r.outputTokens / measured.base;
  const base = r.seconds[0] as number;
  return {
    model,
    measured: measured.lora / measured.base - 1,
    modelled: changes(r.tokensPerSecond),
    baseTokensPerSecond: r.tokensPerSecond[0] as number,
    measuredBaseTokensPerSecond: measured.base,
    stepSeconds: r.seconds,
    outputTokensPerStep: r.outputTokens,
    measuredBaseBracket: r.seconds.slice(1).map((s) => measuredBaseStep / (measuredBaseStep + (s - base)) - 1),
    running: r.running,
    scheduledTokens: r.meanTokens,
  };
}

/** One cell of a GenAI-Perf heatmap: one input length at one concurrency, with each LoRA variant's throughput change. */
export interface HeatmapCell {
  /** Input tokens per request. */
  readonly length: number;
  /** Concurrent clients. */
  readonly concurrency: number;
  /** Modelled output tokens per second without LoRA. */
  readonly baseTokensPerSecond: number;
  /** all-on, einsum, all-off. */
  readonly change: readonly number[];
  /** Mean scheduled (unpadded) tokens per measured step. */
  readonly meanTokens: number;
  /** Most requests running at once during the simulation. */
  readonly maxRunning: number;
}

/**
 * Models every cell of one GenAI-Perf heatmap on v6e under `vllm serve` defaults, one adapter:
 * concurrency-major, input lengths inner.
 * @param axes - input lengths, concurrencies and the fixed output length
 * @param variants - what to price, base first (changes are relative to `variants[0]`)
 * @param cache - shares LoRA step prices across cells with the same shapes
 */
export function heatmapCells(
  model: '8b' | '70b',
  axes: { lengths: readonly number[]; concurrency: readonly number[]; output: number } = GENAI_PERF_AXES,
  variants = PRESET_VARIANTS,
  cache = new LoRAPriceCache(),
): HeatmapCell[] {
  const m = CALIBRATION_MODELS[model];
  const serving = defaultServingConfig('v6e', 'OPENAI_API_SERVER');
  const cells: HeatmapCell[] = [];
  for (const concurrency of axes.concurrency) {
    for (const length of axes.lengths) {
      const r = genaiPerfThroughput(m, CHIPS.v6e, serving, { input: length, output: axes.output }, concurrency, 1, variants, cache);
      cells.push({
        length,
        concurrency,
        baseTokensPerSecond: r.tokensPerSecond[0] as number,
        change: changes(r.tokensPerSecond),
        meanTokens: r.meanTokens,
        maxRunning: r.maxRunning,
      });
    }
  }
  return cells;
}

/** [best, worst] of a variant over the cells (best = the smallest slowdown, nearest 0). */
export function range(cells: readonly HeatmapCell[], variant: number): [number, number] {
  const vs = cells.map((c) => c.change[variant] as number);
  return [Math.max(...vs), Math.min(...vs)];
}
