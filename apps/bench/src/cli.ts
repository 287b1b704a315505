import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { isLoRAError } from '@lora/core';
import { DEMO_PRESETS, type DemoPresetName, demoPreset } from '@lora/llama/demo';
import {
  type AdaptersScaleOptions,
  adaptersScaleSteps,
  adaptersScaleTable,
  cellsFile,
  QUICK_ADAPTERS_SCALE,
  QUICK_SERVE_BENCH,
  runAdaptersScaleBench,
  runServeBench,
  type ServeBenchOptions,
  type ServeBenchResult,
  serveBenchSteps,
  TINY_ADAPTERS_SCALE,
  TINY_SERVE_BENCH,
} from '@lora/server/bench';
import { CHROMIUM_PATH } from '@lora/test-tooling/chromium';
import { benchActivation, benchParse } from './adapters.js';
import { gpuUnavailable, probeNodeBackends } from './backends.js';
import { runInChromium } from './browser.js';
import { GRIDS, gridShapes } from './grid.js';
import { HEATMAPS } from './heatmap.js';
import { FULL_SHAPES, gpuContest, kernelTargets, progressSteps, QUICK_SHAPES, runKernelBench, TINY_SHAPES } from './kernels.js';
import { LOAD_MODELS, LOAD_VARIANTS, type LoadResult, loadTargets, runLoadBench } from './load.js';
import { benchModel, type ModelBackend, type ModelBenchResult } from './model.js';
import { prefixReuseSteps, prefixReuseTable, runPrefixReuseBench } from './prefix-reuse.js';
import { Progress } from './progress.js';
import { adapterTable, kernelTable, modelTable, targetTable } from './report.js';
import { gridSvg, gridTable, heatmapSvgOf, heatmapTable, rooflineSvgOf } from './report-grid.js';
import { loadTable } from './report-load.js';
import { nodeGridSteps, runGridsAndHeatmaps, sweepTargets } from './sweeps.js';
import { runVariantBench, variantSteps, variantTable } from './variants.js';

const SECTIONS = ['kernels', 'grid', 'heatmap', 'adapters', 'model', 'load', 'serve', 'variants', 'adapters-scale'] as const;

const HELP = `npm run bench -- [--quick | --tiny] [--only ${SECTIONS.join(',')}] [--json] [--out DIR] [--no-wasm] [--no-gpu] [--gpu-full] [--no-browser] [--rounds N]
                     [--preset NAME] [--ranks 8,16,32]

kernels   addLoRALinear at decode (T = 32, 8 adapters) and prefill (T = 2048, 4 adapters),
          H = O = 4096, rank 16, against the naive tfjs composition, the per-adapter loop and
          the base matmul: cpu (engine js and wasm), webgpu through Dawn, webgl and webgpu in
          Chromium.
grid      the same contest over T {1..2048} x distinct adapters {1,4,8,16} x rank {8,16,64} on
          every backend (GPUs and tpu-sim on the --quick grid unless --gpu-full; tpu-sim adds its
          cost model's v6e time), with a CPU roofline against a copy benchmark.
heatmap   LoRA slowdown of a demo-model decode forward, input length {128..8k} x concurrency
          {1,4,16,64}, per backend (tpu-sim: priced by its cost model for Llama-3.1-8B).
          --preset (default, smollm2, qwen2.5, ...) and --ranks (8 adapters, ranks cycled; default
          16) apply to it and to the cpu and tpu-sim runs of the model section.
adapters  activating an adapter in a 4-layer Llama-shaped model; parsing 50 MB of safetensors.
model     the demo model serving 16 requests on 8 adapters with and without LoRA on every
          backend that runs in Node.
load      loadModel(dir) of a seeded ~100 M-parameter Llama checkpoint (F32 and BF16, one file
          and 4 shards) on the cpu backend (engines js and wasm): MB/s against >= 200 MB/s, and
          peak memory against float32 model + largest file + 10 %.
serve     the OpenAI-compatible server (@lora/server) through HTTP with streaming clients: input
          {128, 512, 2048} x concurrency {1, 4, 16, 64}, 32 output tokens, every request with its
          own adapter of 8 vs no LoRA, 3 pairs per cell in alternating order; tokens/s, TTFT,
          ITL p50/p99, the LoRA slowdown heatmap (median and range of the pairs, "within noise"
          where the range reaches 0) and the server's overhead against the engine in-process at
          concurrency 16 (goal <= 5 %). Each measurement is appended to serve-cells.jsonl as it
          ends (the full grid takes about 75 minutes here).
          --quick/--tiny: the tiny model on small axes.
variants  what adapter variants cost over plain LoRA: addLoRALinear with every request at its own
          strength (lora_scale), mixing two adapters (lora_mix, one mix lane: must cost +100 %) or
          as an activated LoRA starting halfway through each prefill segment (a saving) against
          plain slots, and a DoRA layer forward against the same
          layer with plain adapters (goal at decode: at most 1.3x), at the kernels section's decode
          and prefill shapes, cpu engines js and wasm, interleaved rounds (median and IQR of
          per-round ratios); and an activated LoRA invoked after a 480-token prompt whose base-model
          KV cache an engine with prefix caching reuses (time to first token with / without).
adapters-scale  1,000 adapters on disk (ranks 8/16/32/64, different target modules) served from a
          --lora-root through 64 device slots and a host cache of 256 adapters: 512 requests from 16
          clients, adapters drawn uniformly and by Zipf(1.0), against the same traffic over 8
          adapters; tokens/s, TTFT p50/p99 by where the adapter was (device slot, host memory, disk),
          loads and evictions per second, peak host memory. --quick: 200 adapters on the tiny model,
          16 slots; --tiny: 24 adapters; --preset NAME: that model instead of the default preset.

Progress goes to stderr; tables and the targets (met or not) to stdout; files to
bench-results/: report.{md,json}, SVG figures (grid-*, heatmap-*, roofline-cpu), serve-cells.jsonl. --json prints
the ratios (stable keys, no absolute times) on stdout for comparing two commits.`;

/** `--ranks 8,16,32`: the bench adapters' ranks, cycled over the adapters (default 16). */
function benchRanks(value: string | undefined): number[] {
  if (value === undefined) return [16];
  const ranks = value.split(',').map(Number);
  if (ranks.length === 0 || !ranks.every((r) => Number.isSafeInteger(r) && r >= 1 && r <= 1024)) {
    throw new Error(`--ranks takes comma-separated ranks in [1, 1024] such as 8,16,32, got "${value}"`);
  }
  return ranks;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      tiny: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      'no-wasm': { type: 'boolean', default: false },
      'no-gpu': { type: 'boolean', default: false },
      'gpu-full': { type: 'boolean', default: false },
      'no-browser': { type: 'boolean', default: false },
      only: { type: 'string' },
      rounds: { type: 'string' },
      preset: { type: 'string' },
      ranks: { type: 'string' },
      out: { type: 'string', default: 'bench-results' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  // The heatmap's and the model section's preset and adapter ranks (issue #17: SmolLM2 / Qwen2.5 shapes, ranks 8–32 mixed).
  const preset = values.tiny ? DEMO_PRESETS.tiny : demoPreset(values.preset ?? 'default');
  const ranks = benchRanks(values.ranks);
  const shapes = values.tiny ? TINY_SHAPES : values.quick ? QUICK_SHAPES : FULL_SHAPES;
  const rounds = Number(values.rounds ?? (values.tiny ? 2 : 7));
  const opts = { rounds, budgetMs: values.tiny ? 200 : 6000, slowMs: 2000, wasm: !values['no-wasm'], base: true };
  const log = (s: string) => process.stderr.write(`${s}\n`);
  log(`lora-kernels bench: ${shapes.map((s) => `${s.name} T=${s.numTokens} H=${s.hidden}`).join(', ')}; ${rounds} interleaved rounds`);
  const only = values.only === undefined ? [...SECTIONS] : values.only.split(',');
  const unknown = only.filter((o) => !(SECTIONS as readonly string[]).includes(o));
  if (unknown.length > 0) throw new Error(`--only takes ${SECTIONS.join(', ')} (comma-separated), got "${unknown.join(',')}"`);
  const runKernels = only.includes('kernels');
  const runAdapters = only.includes('adapters');
  const runModel = only.includes('model');
  const runGrid = only.includes('grid');
  const runHeatmap = only.includes('heatmap');
  const runLoad = only.includes('load');
  const runServe = only.includes('serve');
  const runVariants = only.includes('variants');
  const runAdaptersScale = only.includes('adapters-scale');
  // Issue #22's shape at full size; smaller runs keep its proportions on the tiny model. A named
  // --preset replaces the model (not under --tiny): where LoRA is a smaller share of a step, as on
  // SmolLM2's widths with its 49k-token LM head, more distinct adapters per step cost less.
  const adaptersScale: AdaptersScaleOptions = {
    ...(values.tiny ? TINY_ADAPTERS_SCALE : values.quick ? QUICK_ADAPTERS_SCALE : {}),
    ...(values.preset !== undefined && !values.tiny ? { model: preset } : {}),
  };
  const serveOptions: ServeBenchOptions = values.tiny ? TINY_SERVE_BENCH : values.quick ? QUICK_SERVE_BENCH : {};
  const loadRounds = values.tiny ? 1 : Math.min(rounds, 5);
  const modelRequests = values.tiny ? 4 : 16;
  const adapterRounds = values.tiny ? 2 : 9;
  const gpuProblem = !values['no-gpu'] && (runKernels || runModel || runGrid || runHeatmap) ? await gpuUnavailable() : 'skipped (--no-gpu)';
  const modelGpu = gpuProblem === null;
  // Every backend that runs in Node; the overhead target is the CPU default's (engine wasm).
  type ModelRun = ModelBackend & { preset: DemoPresetName; rounds: number };
  const modelBackends: ModelRun[] = [
    { label: 'cpu (engine wasm)', backend: 'cpu', preset: 'default', rounds: 3 },
    { label: 'cpu (engine js)', backend: 'cpu', backendOptions: { engine: 'js' }, preset: 'default', rounds: 1 },
    // SwiftShader renders in software: the tiny preset keeps this to seconds.
    ...(modelGpu ? [{ label: 'webgpu (node, software)', backend: 'webgpu', preset: 'tiny', rounds: 1 } satisfies ModelRun] : []),
    // Wall-clock of the simulator on the CPU, not of a TPU (its cost model is in the grid and in its own report).
    { label: 'tpu-sim (simulated on the CPU)', backend: 'tpu-sim', preset: 'default', rounds: 1 },
  ];
  const modelRounds = (b: { rounds: number }) => (values.tiny ? 1 : b.rounds);
  // Loading on the cpu backend: engine js, where tfjs adopts the loaded float32 arrays (the loader's
  // own cost), and the default engine wasm, which also copies every weight into its heap.
  const loadBackends: ModelBackend[] = [
    { label: 'cpu (engine js)', backend: 'cpu', backendOptions: { engine: 'js' } },
    ...(values['no-wasm'] ? [] : [{ label: 'cpu (engine wasm)', backend: 'cpu', backendOptions: { engine: 'wasm' } }]),
  ];
  const mode = values.tiny ? 'tiny' : values.quick ? 'quick' : 'full';
  // Software-rendered GPUs take minutes at full size: they sweep the quick grid unless --gpu-full.
  const gpuMode = mode === 'full' && !values['gpu-full'] ? 'quick' : mode;
  const browser = !values['no-browser'] && existsSync(CHROMIUM_PATH);
  const nodeBackends = runGrid ? await probeNodeBackends() : [];
  for (const b of nodeBackends) if (b.problem) log(`grid: ${b.name} does not start in Node (${b.problem})`);
  const sweepPlan = {
    // The TPU simulator interprets its kernels in JS: the quick grid (its cost model prices any size).
    grid: runGrid
      ? { cpu: gridShapes(GRIDS[mode]), gpu: gridShapes(GRIDS[gpuMode]), sim: gridShapes(GRIDS[mode === 'tiny' ? 'tiny' : 'quick']) }
      : undefined,
    heatmap: runHeatmap
      ? {
          cpu: HEATMAPS[mode],
          gpu: HEATMAPS[gpuMode === 'quick' ? 'gpu' : gpuMode],
          preset,
          ranks,
        }
      : undefined,
    rounds: Math.min(rounds, 3),
    budgetMs: values.tiny ? 100 : 1500,
    wasm: !values['no-wasm'],
    // Under --no-gpu (or where webgpu does not start) backends that compile GPU programs sit out.
    nodeBackends: nodeBackends.filter((b) => b.kind !== 'gpu' || gpuProblem === null),
    browser,
  };
  const sweepSteps =
    (sweepPlan.grid ? nodeGridSteps(sweepPlan.grid, sweepPlan.nodeBackends) + sweepPlan.grid.gpu.length * (browser ? 2 : 0) : 0) +
    (sweepPlan.heatmap
      ? sweepPlan.heatmap.cpu.lengths.length * sweepPlan.heatmap.cpu.concurrency.length +
        sweepPlan.heatmap.gpu.lengths.length * sweepPlan.heatmap.gpu.concurrency.length * (browser ? 2 : 0)
      : 0);
  // Software-rendered GPUs (SwiftShader here) take minutes at H = 4096 (prefill alone ~4.5 min):
  // the GPU contest uses the quick shapes unless --gpu-full.
  const gpuShapes = gpuMode === 'tiny' ? TINY_SHAPES : gpuMode === 'quick' ? QUICK_SHAPES : shapes;
  // Per GPU shape: 4 warm-ups + the rounds in Node, one step per shape and backend in Chromium.
  const gpuContestSteps = gpuShapes.length * ((modelGpu ? 4 + Math.min(rounds, 3) : 0) + (browser ? 2 : 0));
  const variantOptions = {
    shapes,
    engines: values['no-wasm'] ? (['js'] as const) : (['js', 'wasm'] as const),
    rounds: Math.max(rounds, 5),
  };
  const progress = new Progress(
    (runKernels ? shapes.length * progressSteps(opts) + gpuContestSteps : 0) +
      sweepSteps +
      (runAdapters ? 3 * adapterRounds : 0) +
      (runModel ? modelBackends.reduce((n, b) => n + 2 * modelRounds(b), 0) : 0) +
      (runLoad ? loadBackends.length * LOAD_VARIANTS.length * loadRounds : 0) +
      (runServe ? serveBenchSteps(serveOptions) : 0) +
      (runVariants ? variantSteps(variantOptions) + prefixReuseSteps(variantOptions.rounds) : 0) +
      (runAdaptersScale ? adaptersScaleSteps(adaptersScale) : 0),
  );
  if (gpuProblem !== null) log(`webgpu in Node skipped: ${gpuProblem}`);
  const results = runKernels ? await runKernelBench({ ...opts, shapes, progress, gpu: gpuProblem === null, gpuShapes }) : [];
  // webgl exists only in browsers: its contest (and webgpu's, again) runs in Chromium when installed.
  if (runKernels && browser) {
    // WebGL on SwiftShader runs the full shapes in about a minute; WebGPU there takes several
    // (workgroup memory and barriers are emulated), so it keeps the GPU shapes.
    const task = (backend: string) => ({
      kind: 'contest' as const,
      shapes: backend === 'webgl' && gpuMode === 'quick' ? shapes : gpuShapes,
      rounds: Math.min(rounds, 3),
    });
    for (const contest of await runInChromium(['webgl', 'webgpu'], task, (l) => progress.step(l))) {
      if (contest.error) log(`${contest.backend} in Chromium: ${contest.error}`);
      for (const { shape, samples } of contest.contest ?? []) {
        const r = results.find((x) => x.shape.name === shape.name);
        if (r) r.browser = [...(r.browser ?? []), gpuContest(contest.backend, samples, shape)];
      }
    }
  } else if (runKernels && !values['no-browser']) log(`browser contests skipped: ${CHROMIUM_PATH} is not installed`);
  const sweeps = await runGridsAndHeatmaps(sweepPlan, progress, log);
  const activation = runAdapters
    ? await benchActivation(values.tiny ? DEMO_PRESETS.tiny : DEMO_PRESETS.default, adapterRounds, progress)
    : undefined;
  const parses = runAdapters ? (['F32', 'BF16'] as const).map((d) => benchParse(values.tiny ? 1 : 50, d, adapterRounds, progress)) : [];
  const models: ModelBenchResult[] = [];
  for (const b of runModel ? modelBackends : []) {
    models.push(
      // The GPU run keeps its own (tiny) preset: SwiftShader renders in software.
      await benchModel(b.preset === 'default' ? preset : DEMO_PRESETS[values.tiny ? 'tiny' : b.preset], {
        requests: modelRequests,
        adapters: values.tiny ? 2 : 8,
        rank: Math.max(...ranks),
        ...(ranks.length > 1 ? { ranks } : {}),
        maxNewTokens: values.tiny ? 2 : 16,
        rounds: modelRounds(b),
        backend: b,
        progress,
      }),
    );
  }
  const model = models[0];
  const loads: LoadResult[] = runLoad
    ? await runLoadBench({ spec: values.tiny ? LOAD_MODELS.tiny : LOAD_MODELS.full, backends: loadBackends, rounds: loadRounds, progress })
    : [];
  const serve: ServeBenchResult | undefined = runServe
    ? await runServeBench({
        ...serveOptions,
        onProgress: (l) => progress.step(l.replace(/^serve bench: /, 'serve: ')),
        onCell: cellsFile(join(resolve(values.out), 'serve-cells.jsonl')),
      })
    : undefined;
  const variants = runVariants ? await runVariantBench({ ...variantOptions, progress }) : [];
  const prefixReuse = runVariants
    ? await runPrefixReuseBench(values.tiny ? DEMO_PRESETS.tiny : DEMO_PRESETS.default, {
        prefixTokens: values.tiny ? 96 : 480,
        rounds: variantOptions.rounds,
        progress,
      })
    : undefined;
  const scale = runAdaptersScale
    ? await runAdaptersScaleBench({ ...adaptersScale, onProgress: (l) => progress.step(l.replace(/^adapters-scale: /, 'adapters: ')) })
    : undefined;
  progress.finish();

  const targets = [...kernelTargets(results), ...sweepTargets(sweeps), ...loadTargets(loads)];
  if (serve) {
    const o = serve.json.overhead;
    targets.push({
      name: 'server overhead: tokens/s in-process / through HTTP − 1, with LoRA',
      shape: `concurrency ${o.concurrency}, input ${o.inputLength}`,
      value: o.overhead,
      goal: `≤ ${Math.round(100 * o.goal)} %`,
      met: o.overhead <= o.goal,
    });
  }
  // #19: DoRA at decode costs at most 1.3× plain LoRA's layer time (the median of per-round ratios).
  for (const v of variants.filter((r) => r.variant === 'DoRA (layer forward)' && r.shape.layout === 'interleaved')) {
    targets.push({
      name: `DoRA layer forward / plain LoRA − 1, cpu engine ${v.engine}`,
      shape: v.shape.name,
      value: v.cost,
      goal: '≤ 30 %',
      met: v.cost <= 0.3,
    });
  }
  if (scale) {
    // #22: many adapters cost at most 30 % (uniform) / 10 % (Zipf) of the tokens/s, a cold adapter at most 2× a resident one's TTFT, the host cache stays in its budget.
    const [reference, uniform, zipf] = scale.runs;
    const shape = `${scale.config.adapters} adapters, ${scale.config.maxLoras} slots`;
    for (const [run, goal] of [
      [uniform, 0.7],
      [zipf, 0.9],
    ] as const) {
      // The median over rounds of the ratio within a round (both patterns saw the same machine state).
      const value = run?.ratio.median ?? 0;
      targets.push({
        name: `${run?.traffic} traffic tokens/s over the ${reference?.adapters}-adapter run (its LoRA bytes allow ${run?.mustRatio.toFixed(2)}×)`,
        shape,
        value,
        goal: `≥ ${goal}×`,
        met: value >= goal,
      });
    }
    // "At the same load": probes taking turns under the reference run's traffic (see runAdaptersScaleBench).
    const cold = scale.probe.cold.p99 / scale.probe.resident.p99;
    targets.push({
      name: `TTFT p99, ${(scale.probe.adapterBytes / 2 ** 20).toFixed(1)} MB adapter on disk / resident (probes)`,
      shape,
      value: cold,
      goal: '≤ 2×',
      met: cold <= 2,
    });
    const peak = Math.max(...scale.runs.map((r) => r.peakHostBytes)) / scale.config.maxCpuLoraBytes;
    targets.push({ name: 'peak host cache bytes / maxCpuLoraBytes', shape, value: peak, goal: '≤ 1.05×', met: peak <= 1.05 });
  }
  if (model) {
    targets.push({
      name: `demo model LoRA overhead on ${model.backend} (16 requests, 8 adapters)`,
      shape: model.preset,
      value: model.overhead,
      goal: '≤ 10 %',
      met: model.overhead <= 0.1,
    });
  }
  const sections = [
    runKernels ? `## CPU backend kernels\n\n${kernelTable(results)}` : '',
    sweeps.grids.length > 0
      ? `## Kernel grid\n\n${sweeps.grids.map((g) => gridTable(g, g === sweeps.cpuGrid ? sweeps.copyGBps : undefined)).join('\n\n')}`
      : '',
    sweeps.heatmaps.length > 0 ? `## LoRA slowdown heatmaps\n\n${sweeps.heatmaps.map(heatmapTable).join('\n\n')}` : '',
    activation ? `## Adapters\n\n${adapterTable(activation, parses)}` : '',
    models.length > 0 ? `## Demo model\n\n${models.map(modelTable).join('\n\n')}` : '',
    loads.length > 0 ? `## Checkpoint loading\n\n${loadTable(loads)}` : '',
    serve ? `## Serving through HTTP (@lora/server)\n\n${serve.table}` : '',
    variants.length > 0 ? `## Adapter variants over plain LoRA\n\n${variantTable(variants)}` : '',
    scale ? `## Thousands of adapters (#22)\n\n${adaptersScaleTable(scale)}` : '',
    prefixReuse
      ? `## Activated LoRA: the base model's KV cache of the prompt reused (prefix caching)\n\n${prefixReuseTable(prefixReuse)}`
      : '',
  ];
  // The issues set their targets at the full shapes: smaller runs only check that everything runs.
  const caveat =
    mode === 'full' ? '' : `\n\nThis was a --${mode} run: the targets are set at the full shapes (H = 4096), so misses here say little.`;
  if (targets.length > 0) sections.push(`## Targets\n\n${targetTable(targets)}${caveat}`);
  const markdown = `${sections.filter(Boolean).join('\n\n')}\n`;
  const summary = {
    schema: 'lora-bench/report@2',
    shapes: Object.fromEntries(results.map((r) => [r.shape.name, { shape: r.shape, ratios: r.ratios }])),
    targets: targets.map(({ name, shape, value, goal, met }) => ({ name, shape, value, goal, met })),
    adapters: activation ? { activation, parses } : undefined,
    model: model ? { preset: model.preset, overhead: model.overhead, lora: model.lora, base: model.base } : undefined,
    models: models.map((m) => ({
      backend: m.backend,
      preset: m.preset,
      overhead: m.overhead,
      overheadRange: m.overheadRange,
      mustCost: m.mustCost,
      lora: m.lora,
      base: m.base,
    })),
    load: loads.map((l) => ({
      backend: l.backend,
      variant: l.variant,
      checkpointMB: l.checkpointMB,
      mbPerSec: l.mbPerSec,
      minMbPerSec: l.minMbPerSec,
      maxMbPerSec: l.maxMbPerSec,
      peakRssMB: l.peakRssMB,
      peakArrayBuffersMB: l.peakArrayBuffersMB,
      boundMB: l.boundMB,
    })),
    grids: sweeps.grids.map((g) => ({
      backend: g.backend,
      programsCompiled: g.programsCompiled,
      points: Object.fromEntries(
        g.points.map((p) => [
          p.shape.name,
          { naiveOverLoRA: p.naiveOverLoRA, loopOverLoRA: p.loopOverLoRA, loraShareOfBase: p.loraShareOfBase },
        ]),
      ),
    })),
    roofline: sweeps.cpuGrid && sweeps.copyGBps ? { backend: sweeps.cpuGrid.backend, copyGBps: sweeps.copyGBps } : undefined,
    serve: serve
      ? {
          config: serve.json.config,
          overhead: serve.json.overhead.overhead,
          slowdown: Object.fromEntries(serve.json.slowdown.map((c) => [`${c.inputLength}x${c.concurrency}`, c.slowdown])),
          withinNoise: serve.json.slowdown.filter((c) => c.withinNoise).map((c) => `${c.inputLength}x${c.concurrency}`),
        }
      : undefined,
    variants: variants.map((v) => ({
      variant: v.variant,
      engine: v.engine,
      shape: v.shape.name,
      cost: v.cost,
      spread: v.spread,
      withinNoise: v.withinNoise,
    })),
    adaptersScale: scale,
    prefixReuse: prefixReuse
      ? {
          cachedTokens: prefixReuse.cachedTokens,
          promptTokens: prefixReuse.promptTokens,
          ratio: prefixReuse.ratio,
          spread: prefixReuse.spread,
        }
      : undefined,
    heatmaps: sweeps.heatmaps.map((h) => ({
      backend: h.backend,
      preset: h.preset,
      slowdown: Object.fromEntries(h.cells.map((c) => [`${c.length}x${c.concurrency}`, c.slowdown])),
      withinNoise: h.cells.filter((c) => c.withinNoise).map((c) => `${c.length}x${c.concurrency}`),
      inherent: Object.fromEntries(h.cells.flatMap((c) => (c.inherent ? [[`${c.length}x${c.concurrency}`, c.inherent]] : []))),
    })),
  };
  const outDir = resolve(values.out);
  await mkdir(outDir, { recursive: true });
  const written = ['report.md', 'report.json'];
  const figure = async (name: string, svg: string) => {
    await writeFile(join(outDir, name), svg);
    written.push(name);
  };
  const slug = (s: string) =>
    s
      .replace(/[^a-z0-9]+/gi, '-')
      .replace(/^-|-$/g, '')
      .toLowerCase();
  for (const g of sweeps.grids) await figure(`grid-${slug(g.backend)}.svg`, gridSvg(g));
  for (const h of sweeps.heatmaps) await figure(`heatmap-${slug(h.backend)}.svg`, heatmapSvgOf(h));
  if (sweeps.cpuGrid && sweeps.copyGBps) await figure('roofline-cpu.svg', rooflineSvgOf(sweeps.cpuGrid, sweeps.copyGBps));
  if (serve) await figure('heatmap-serve.svg', serve.svg);
  await writeFile(join(outDir, 'report.md'), markdown);
  const raw = { samples: results.map((r) => r.samples), grids: sweeps.grids, heatmaps: sweeps.heatmaps, serve: serve?.json };
  await writeFile(join(outDir, 'report.json'), `${JSON.stringify({ ...summary, raw }, null, 2)}\n`);
  if (values.json) {
    console.log(JSON.stringify(summary, null, 2));
  } else {
    console.log(`\n${markdown}\nWritten to ${outDir}: ${written.join(', ')}`);
  }
}

main().catch((err) => {
  // A bad option or preset is the user's: one line. Anything else is a bug, shown with its stack.
  const usage =
    isLoRAError(err) || String((err as { code?: unknown })?.code).startsWith('ERR_PARSE_ARGS') || /^--/.test((err as Error)?.message);
  console.error(usage ? (err as Error).message : err);
  process.exit(1);
});
