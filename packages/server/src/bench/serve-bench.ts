import { cpus } from 'node:os';
import { type LoRAAdapter, loadPeftAdapter } from '@lora/core';
import { adapterFiles, buildCheckpoint, type CheckpointSpec, type ModelConfig } from '@lora/llama';
import { DEMO_PRESETS, median, roundSpread } from '@lora/llama/demo';
import { memoryAdapter } from '../models.js';
import { createServing, type Serving } from '../node/load.js';
import { type HttpServer, listen } from '../node/serve.js';
import { type ClientLoop, startClientLoop } from './client-worker.js';
import { type CellResult, heatmapSvg, markdownTable, type Overhead, type SlowdownCell } from './report.js';
import { closedLoop, promptOf } from './requests.js';
import { percentile, type StreamTiming } from './stats.js';

/** What {@link runServeBench} measures: the model, the axes and the adapters; every field has a default. */
export interface ServeBenchOptions {
  /** The model's shape (a seeded checkpoint built in memory); default the demo's "default" preset, its context long enough for the inputs. */
  readonly model?: CheckpointSpec;
  /** Prompt lengths in tokens (default 128, 512, 2048). */
  readonly inputLengths?: readonly number[];
  /** Clients sending at once (default 1, 4, 16, 64). */
  readonly concurrencies?: readonly number[];
  /** Tokens generated per request, fixed with ignore_eos (default 32). */
  readonly outputLength?: number;
  /** Adapters the LoRA runs spread their requests over, one per request in turn (default 8). */
  readonly adapters?: number;
  /** Rank of every benchmark adapter, each on all seven linear projections (default 16); also the server's `maxLoraRank`. */
  readonly adapterRank?: number;
  /** Requests per measurement = max(minRequests, rounds × concurrency) (default 1: one wave of every client). */
  readonly rounds?: number;
  /**
   * LoRA / no-LoRA pairs measured per cell, alternating which goes first (default 3). The slowdown
   * is the median of the pairs' slowdowns with its interquartile range, "within noise" when that
   * range reaches 0; a single pair on this machine moves by tens of points.
   */
  readonly repeats?: number;
  /** The fewest requests a cell sends, whatever its concurrency (default 4). */
  readonly minRequests?: number;
  /** The concurrency of the HTTP-vs-in-process overhead measurement (default 16; clipped to the largest concurrency). */
  readonly overheadConcurrency?: number;
  /** Alternating HTTP / in-process repetitions of the overhead measurement; the best of each counts (default 3). */
  readonly overheadRepeats?: number;
  /** The server's LoRA backend by name (default "cpu"), as `lora-serve --backend`. */
  readonly backend?: string;
  /** Progress lines (stderr in the CLI). */
  readonly onProgress?: (line: string) => void;
  /** Each measurement (one mode of one repeat of a cell) as soon as it ends, so that a run stopped part way keeps what it measured (the CLI appends them to serve-cells.jsonl). */
  readonly onCell?: (cell: CellResult & { readonly repeat: number }) => void;
}

/** Small axes and the tiny model: seconds, for tests and a first look (`--quick`). */
export const QUICK_SERVE_BENCH: ServeBenchOptions = {
  model: { ...DEMO_PRESETS.tiny, maxPositionEmbeddings: 512 },
  inputLengths: [16, 64],
  concurrencies: [1, 4],
  outputLength: 8,
  rounds: 1,
  repeats: 3,
  minRequests: 4,
  overheadConcurrency: 4,
  overheadRepeats: 1,
};

/** The quick setting on even smaller axes: a second or two, for tests and `npm run bench -- --tiny`. */
export const TINY_SERVE_BENCH: ServeBenchOptions = {
  ...QUICK_SERVE_BENCH,
  inputLengths: [8, 24],
  concurrencies: [1, 3],
  outputLength: 3,
  repeats: 2,
};

/** The results as data: what `npm run serve-bench` writes to serve.json. */
export interface ServeBenchJson {
  /** The settings the run used, defaults filled in, and the machine it ran on. */
  readonly config: {
    /** The seeded checkpoint's shape (the option, or the "default" preset with a context long enough for the inputs). */
    readonly model: CheckpointSpec;
    /** Prompt lengths in tokens. */
    readonly inputLengths: readonly number[];
    /** Clients sending at once. */
    readonly concurrencies: readonly number[];
    /** Tokens generated per request (ignore_eos). */
    readonly outputLength: number;
    /** How many adapters the LoRA runs spread their requests over (also the server's `maxLoras` and `maxCpuLoras`). */
    readonly adapters: number;
    /** Rank of every adapter. */
    readonly adapterRank: number;
    /** The LoRA backend's name. */
    readonly backend: string;
    /** The Node version (`process.version`). */
    readonly node: string;
    /** Logical CPUs of the machine (`os.cpus().length`). */
    readonly cpus: number;
  };
  /** Every cell measured: LoRA, then base, for each input length × concurrency. */
  readonly cells: readonly CellResult[];
  /** The LoRA slowdown for each input length × concurrency. */
  readonly slowdown: readonly SlowdownCell[];
  /** HTTP against the engine in-process. */
  readonly overhead: Overhead;
}

/** What {@link runServeBench} returns: the report as markdown, as an SVG heatmap, and as data. */
export interface ServeBenchResult {
  /** Markdown: every cell (tokens/s, TTFT and ITL p50/p99), the slowdown grid, the server's overhead. */
  readonly table: string;
  /** The slowdown heatmap (input length × concurrency). */
  readonly svg: string;
  /** The same results as data (serve.json). */
  readonly json: ServeBenchJson;
}

/** The options' defaults, in one place for the run and for the progress count. */
function withDefaults(options: ServeBenchOptions) {
  return {
    inputLengths: options.inputLengths ?? [128, 512, 2048],
    concurrencies: options.concurrencies ?? [1, 4, 16, 64],
    outputLength: options.outputLength ?? 32,
    adapters: options.adapters ?? 8,
    adapterRank: options.adapterRank ?? 16,
    rounds: options.rounds ?? 1,
    repeats: options.repeats ?? 3,
    minRequests: options.minRequests ?? 4,
    overheadRepeats: options.overheadRepeats ?? 3,
  };
}

/** How many progress lines `runServeBench` reports with these options (two per repeat of a cell, one per overhead round): a caller's progress bar total. */
export function serveBenchSteps(options: ServeBenchOptions = {}): number {
  const { inputLengths, concurrencies, repeats, overheadRepeats } = withDefaults(options);
  return 2 * repeats * inputLengths.length * concurrencies.length + overheadRepeats;
}

const ALL_LINEAR = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

function benchAdapters(config: ModelConfig, n: number, rank: number): LoRAAdapter[] {
  return Array.from({ length: n }, (_, i) => {
    const spec = { id: `bench-lora-${i}`, rank, alpha: 2 * rank, targets: ALL_LINEAR };
    return loadPeftAdapter({ id: spec.id, ...adapterFiles(config, spec, 9000 + i) });
  });
}

interface Setup {
  readonly serving: Serving;
  readonly http: HttpServer;
  readonly client: ClientLoop;
  readonly adapters: readonly string[];
  readonly vocab: number;
  readonly outputLength: number;
}

const modelFor = (s: Setup, mode: 'lora' | 'base', i: number) =>
  mode === 'lora' ? (s.adapters[i % s.adapters.length] as string) : s.serving.app.models.baseModel;

function httpCell(
  s: Setup,
  inputLength: number,
  concurrency: number,
  mode: 'lora' | 'base',
  requests: number,
): Promise<{ timings: StreamTiming[]; ms: number }> {
  const bodies = Array.from({ length: requests }, (_, i) => ({
    model: modelFor(s, mode, i),
    prompt: promptOf(inputLength, i, s.vocab),
    max_tokens: s.outputLength,
    ignore_eos: true,
    temperature: 0,
  }));
  return s.client.run(bodies, concurrency);
}

/** The same requests with the engine in-process: `engine.add`, no HTTP, no JSON. */
async function engineCell(s: Setup, inputLength: number, concurrency: number, requests: number): Promise<{ tokens: number; ms: number }> {
  const { results, ms } = await closedLoop(requests, concurrency, async (i) => {
    const lease = await s.serving.app.models.acquire(modelFor(s, 'lora', i));
    try {
      const handle = s.serving.engine.add({
        prompt: promptOf(inputLength, i, s.vocab),
        adapter: lease.adapter,
        sampling: { maxTokens: s.outputLength, ignoreEos: true, temperature: 0 },
      });
      // Read the deltas as the HTTP path does, so both sides consume the same stream.
      let n = 0;
      for await (const d of handle) n += d.tokenIds.length;
      return n;
    } finally {
      lease.release();
    }
  });
  return { tokens: results.reduce((a, b) => a + b, 0), ms };
}

type Measured = { timings: StreamTiming[]; ms: number };

const tokensPerSecond = (m: Measured) => m.timings.reduce((n, t) => n + t.tokens, 0) / (m.ms / 1000);

/** One mode of a cell over its repeats: the median repeat's tokens/s, latency percentiles over every request of every repeat. */
function summarize(inputLength: number, concurrency: number, mode: 'lora' | 'base', runs: readonly Measured[]): CellResult {
  const timings = runs.flatMap((r) => r.timings);
  const ok = timings.filter((t) => t.error === undefined);
  const failed = timings.filter((t) => t.error !== undefined);
  const ttft = ok.map((t) => t.ttftMs);
  const itl = ok.flatMap((t) => t.itlMs);
  return {
    inputLength,
    concurrency,
    mode,
    requests: ok.length,
    failed: failed.length,
    ...(failed.length > 0 ? { firstError: failed[0]?.error } : {}),
    repeats: runs.length,
    tokensPerSecond: median(runs.map(tokensPerSecond)),
    ttftP50Ms: percentile(ttft, 50),
    ttftP99Ms: percentile(ttft, 99),
    itlP50Ms: percentile(itl, 50),
    itlP99Ms: percentile(itl, 99),
  };
}

/**
 * Waits for the engine to finish every request of a cell whose clients have all ended: a request
 * outliving its client (an abort that did not reach the engine) would slow every later cell, so
 * it stops the run instead of being measured (each step re-checks, so a request that is
 * retiring right now is given a moment).
 */
async function settled(serving: Serving, ms = 10_000): Promise<void> {
  const end = performance.now() + ms;
  for (;;) {
    const { running, waiting } = serving.engine.stats();
    if (running + waiting === 0) return;
    if (performance.now() > end) {
      throw new Error(
        `serve bench: ${running} running and ${waiting} waiting request(s) are still in the engine ${ms} ms after their clients ended`,
      );
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * The end-to-end serving benchmark, through HTTP with a real client loop: a server on 127.0.0.1
 * (the same createServing as `lora-serve`), then for each input length × concurrency a closed
 * loop of streaming clients (node:http, in a worker thread so that they do not share the server's
 * event loop) — every request with its own adapter of 8 in turn, then the same
 * requests on the base model — with the output length fixed (ignore_eos). Reports output
 * tokens/s, TTFT and inter-token latency p50/p99, the LoRA slowdown as the vLLM TPU multi-LoRA
 * report computes it ((LoRA / baseline) − 1), and the server's own overhead: tokens/s through
 * HTTP against the engine in-process on the same requests.
 */
export async function runServeBench(options: ServeBenchOptions = {}): Promise<ServeBenchResult> {
  const {
    inputLengths,
    concurrencies,
    outputLength,
    adapters: adapterCount,
    adapterRank,
    rounds,
    repeats,
    minRequests,
    overheadRepeats,
  } = withDefaults(options);
  const maxConcurrency = Math.max(...concurrencies);
  const context = Math.max(...inputLengths) + outputLength;
  const model: CheckpointSpec = options.model ?? {
    ...DEMO_PRESETS.default,
    maxPositionEmbeddings: Math.max(1024, 2 ** Math.ceil(Math.log2(context))),
  };
  if ((model.maxPositionEmbeddings ?? 512) < context) {
    throw new Error(`the model's context (${model.maxPositionEmbeddings}) is shorter than the longest input + output (${context})`);
  }
  const log = options.onProgress ?? (() => {});
  const backend = options.backend ?? 'cpu';
  const checkpoint = buildCheckpoint(model);
  const serving = await createServing({
    modelFiles: checkpoint.files,
    servedModelName: 'bench-base',
    backend,
    maxLoras: adapterCount,
    maxLoraRank: adapterRank,
    maxCpuLoras: adapterCount,
    maxNumSeqs: maxConcurrency,
    maxQueue: 4 * maxConcurrency + 16,
  });
  let http: HttpServer | undefined;
  let client: ClientLoop | undefined;
  try {
    const adapters = benchAdapters(serving.model.config, adapterCount, adapterRank);
    for (const a of adapters) await serving.app.models.add(a.id, memoryAdapter(a));
    http = await listen(serving.app, { host: '127.0.0.1', port: 0 });
    client = startClientLoop(http.url);
    const s: Setup = { serving, http, client, adapters: adapters.map((a) => a.id), vocab: serving.model.config.vocabSize, outputLength };
    const cells: CellResult[] = [];
    const slowdown: SlowdownCell[] = [];
    let flip = false;
    for (const inputLength of inputLengths) {
      // Warm-up at this length (JIT, heap growth, XNNPACK packing at these shapes) with and without LoRA.
      for (const mode of ['lora', 'base'] as const) {
        await httpCell({ ...s, outputLength: 2 }, inputLength, Math.min(4, maxConcurrency), mode, Math.min(4, maxConcurrency));
        await settled(serving);
      }
      for (const concurrency of concurrencies) {
        const requests = Math.max(minRequests, rounds * concurrency);
        const runs: Record<'lora' | 'base', Measured[]> = { lora: [], base: [] };
        // Each measurement summarised once: written out as it ends, then paired with its other mode.
        const each: Record<'lora' | 'base', CellResult[]> = { lora: [], base: [] };
        for (let repeat = 0; repeat < repeats; repeat++) {
          // Alternate which mode goes first, so drift (thermal, other load) does not always favour one.
          for (const mode of flip ? (['base', 'lora'] as const) : (['lora', 'base'] as const)) {
            log(
              `serve bench: input ${inputLength}, concurrency ${concurrency}, ${mode === 'lora' ? `${adapterCount} adapters` : 'no LoRA'}, ${requests} requests${repeats > 1 ? `, repeat ${repeat + 1}/${repeats}` : ''}`,
            );
            const measured = await httpCell(s, inputLength, concurrency, mode, requests);
            await settled(serving);
            const cell = summarize(inputLength, concurrency, mode, [measured]);
            options.onCell?.({ ...cell, repeat });
            runs[mode].push(measured);
            each[mode].push(cell);
          }
          flip = !flip;
        }
        const pairs = each.lora.map((lora, i) => (each.base[i] as CellResult).tokensPerSecond / lora.tokensPerSecond - 1);
        const itlPairs = each.lora.map((lora, i) => lora.itlP50Ms / (each.base[i] as CellResult).itlP50Ms - 1);
        cells.push(summarize(inputLength, concurrency, 'lora', runs.lora), summarize(inputLength, concurrency, 'base', runs.base));
        const spread = roundSpread(pairs);
        slowdown.push({
          inputLength,
          concurrency,
          slowdown: spread.median,
          low: spread.low,
          high: spread.high,
          withinNoise: spread.withinNoise,
          itlSlowdown: median(itlPairs),
        });
      }
    }
    const oc = Math.min(options.overheadConcurrency ?? 16, maxConcurrency);
    const ol = inputLengths[0] as number;
    const requests = Math.max(minRequests, rounds * oc);
    let httpBest = 0;
    let engineBest = 0;
    for (let r = 0; r < overheadRepeats; r++) {
      log(`serve bench: overhead at concurrency ${oc}, input ${ol}: HTTP vs in-process, round ${r + 1}`);
      const h = await httpCell(s, ol, oc, 'lora', requests);
      await settled(serving);
      httpBest = Math.max(httpBest, h.timings.reduce((n, t) => n + t.tokens, 0) / (h.ms / 1000));
      const e = await engineCell(s, ol, oc, requests);
      engineBest = Math.max(engineBest, e.tokens / (e.ms / 1000));
    }
    const overhead: Overhead = {
      concurrency: oc,
      inputLength: ol,
      httpTokensPerSecond: httpBest,
      engineTokensPerSecond: engineBest,
      overhead: engineBest / httpBest - 1,
      goal: 0.05,
    };
    const title = `Serving through HTTP: ${model.numHiddenLayers} layers, hidden ${model.hiddenSize}, ${adapterCount} adapters of rank ${adapterRank}, ${outputLength} output tokens (${backend})`;
    const json: ServeBenchJson = {
      config: {
        model,
        inputLengths,
        concurrencies,
        outputLength,
        adapters: adapterCount,
        adapterRank,
        backend,
        node: process.version,
        cpus: cpus().length,
      },
      cells,
      slowdown,
      overhead,
    };
    return {
      table: markdownTable({ title, cells, slowdown, overhead, inputLengths, concurrencies }),
      svg: heatmapSvg({
        title: `LoRA slowdown through the server (${adapterCount} adapters, rank ${adapterRank})`,
        slowdown,
        inputLengths,
        concurrencies,
      }),
      json,
    };
  } finally {
    await client?.close();
    await http?.shutdown({ graceMs: 0 });
    await serving.dispose();
  }
}
