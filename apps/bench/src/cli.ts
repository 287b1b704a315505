import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CHROMIUM_PATH } from '@lora/conformance/chromium';
import { PRESETS } from '@lora/demo/serving';
import { benchActivation, benchParse, DEMO_MODEL, TINY_MODEL } from './adapters.js';
import { gpuUnavailable } from './backends.js';
import { runInChromium } from './browser.js';
import { FULL_SHAPES, gpuContest, kernelTargets, progressSteps, QUICK_SHAPES, runKernelBench, TINY_SHAPES } from './kernels.js';
import { benchModel, type ModelBackend, type ModelBenchResult } from './model.js';
import { Progress } from './progress.js';
import { adapterTable, kernelTable, modelTable, targetTable } from './report.js';

const HELP = `pnpm bench [--quick | --tiny] [--only kernels|adapters|model] [--json] [--out DIR] [--no-wasm] [--no-gpu] [--gpu-full] [--no-browser] [--rounds N]

Kernel benchmark of the CPU backend at decode (T = 32, 8 adapters) and prefill (T = 2048,
4 adapters) shapes, H = O = 4096, rank 16, against the naive tfjs composition, the per-adapter
loop and the base matmul on tfjs cpu and wasm. Prints progress to stderr, a table and the
targets at the end; then adapter activation in a 4-layer Llama-shaped model and parsing a
50 MB safetensors file; then the demo model serving 16 requests on 8 adapters with and
without LoRA on every backend that runs in Node (cpu engine wasm and js, webgpu through Dawn
when it has an adapter). Writes bench-results/kernels.{json,md}. --json prints the ratios (stable
keys, no absolute kernel times) on stdout for comparing two commits.`;

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
      out: { type: 'string', default: 'bench-results' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const shapes = values.tiny ? TINY_SHAPES : values.quick ? QUICK_SHAPES : FULL_SHAPES;
  const rounds = Number(values.rounds ?? (values.tiny ? 2 : 7));
  const opts = { rounds, budgetMs: values.tiny ? 200 : 6000, slowMs: 2000, wasm: !values['no-wasm'], base: true };
  const log = (s: string) => process.stderr.write(`${s}\n`);
  log(`lora-kernels bench: ${shapes.map((s) => `${s.name} T=${s.numTokens} H=${s.hidden}`).join(', ')}; ${rounds} interleaved rounds`);
  const only = values.only as string | undefined;
  if (only !== undefined && !['kernels', 'adapters', 'model'].includes(only))
    throw new Error(`--only takes kernels, adapters or model, got "${only}"`);
  const runKernels = only === undefined || only === 'kernels';
  const runAdapters = only === undefined || only === 'adapters';
  const runModel = only === undefined || only === 'model';
  const modelRequests = values.tiny ? 4 : 16;
  const adapterRounds = values.tiny ? 2 : 9;
  const gpuProblem = !values['no-gpu'] && (runKernels || runModel) ? await gpuUnavailable() : 'skipped (--no-gpu)';
  const modelGpu = gpuProblem === null;
  // Every backend that runs in Node; the overhead target is the CPU default's (engine wasm).
  const modelBackends: Array<ModelBackend & { preset: string; rounds: number }> = [
    { label: 'cpu (engine wasm)', backend: 'cpu', preset: 'default', rounds: 3 },
    { label: 'cpu (engine js)', backend: 'cpu', backendOptions: { engine: 'js' }, preset: 'default', rounds: 1 },
    // SwiftShader renders in software: the tiny preset keeps this to seconds.
    ...(modelGpu ? [{ label: 'webgpu (node, software)', backend: 'webgpu', preset: 'tiny', rounds: 1 }] : []),
  ];
  const modelRounds = (b: { rounds: number }) => (values.tiny ? 1 : b.rounds);
  const progress = new Progress(
    (runKernels ? shapes.length * progressSteps(opts) : 0) +
      (runAdapters ? 3 * adapterRounds : 0) +
      (runModel ? modelBackends.reduce((n, b) => n + 2 * modelRounds(b), 0) : 0),
  );
  if (gpuProblem !== null) log(`webgpu in Node skipped: ${gpuProblem}`);
  // Software-rendered GPUs (SwiftShader here) take minutes at H = 4096 (prefill alone ~4.5 min):
  // the GPU contest uses the quick shapes unless --gpu-full.
  const gpuShapes = values.tiny ? TINY_SHAPES : values['gpu-full'] ? shapes : QUICK_SHAPES;
  const results = runKernels ? await runKernelBench({ ...opts, shapes, progress, gpu: gpuProblem === null, gpuShapes }) : [];
  // webgl exists only in browsers: its contest (and webgpu's, again) runs in Chromium when installed.
  if (runKernels && !values['no-browser'] && existsSync(CHROMIUM_PATH)) {
    for (const contest of await runInChromium(['webgl', 'webgpu'], gpuShapes, Math.min(rounds, 3), (l) => progress.step(l))) {
      if (contest.error) log(`${contest.backend} in Chromium: ${contest.error}`);
      for (const { shape, samples } of contest.shapes) {
        const r = results.find((x) => x.shape.name === shape.name);
        if (r) r.browser = [...(r.browser ?? []), gpuContest(contest.backend, samples)];
      }
    }
  } else if (runKernels && !values['no-browser']) log(`browser contests skipped: ${CHROMIUM_PATH} is not installed`);
  const activation = runAdapters ? await benchActivation(values.tiny ? TINY_MODEL : DEMO_MODEL, adapterRounds, progress) : undefined;
  const parses = runAdapters ? (['F32', 'BF16'] as const).map((d) => benchParse(values.tiny ? 1 : 50, d, adapterRounds, progress)) : [];
  const models: ModelBenchResult[] = [];
  for (const b of runModel ? modelBackends : []) {
    models.push(
      await benchModel(values.tiny ? PRESETS.tiny! : PRESETS[b.preset]!, {
        requests: modelRequests,
        adapters: values.tiny ? 2 : 8,
        rank: 16,
        maxNewTokens: values.tiny ? 2 : 16,
        rounds: modelRounds(b),
        backend: b,
        progress,
      }),
    );
  }
  const model = models[0];
  progress.finish();

  const targets = kernelTargets(results);
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
    activation ? `## Adapters\n\n${adapterTable(activation, parses)}` : '',
    models.length > 0 ? `## Demo model\n\n${models.map(modelTable).join('\n\n')}` : '',
  ];
  if (targets.length > 0) sections.push(`## Targets\n\n${targetTable(targets)}`);
  const markdown = `${sections.filter(Boolean).join('\n\n')}\n`;
  const summary = {
    schema: 'lora-bench/kernels@1',
    shapes: Object.fromEntries(results.map((r) => [r.shape.name, { shape: r.shape, ratios: r.ratios }])),
    targets: targets.map(({ name, shape, value, goal, met }) => ({ name, shape, value, goal, met })),
    adapters: activation ? { activation, parses } : undefined,
    model: model ? { preset: model.preset, overhead: model.overhead, lora: model.lora, base: model.base } : undefined,
    models: models.map((m) => ({ backend: m.backend, preset: m.preset, overhead: m.overhead, lora: m.lora, base: m.base })),
  };
  const outDir = resolve(values.out);
  await mkdir(outDir, { recursive: true });
  await writeFile(join(outDir, 'kernels.md'), markdown);
  await writeFile(join(outDir, 'kernels.json'), `${JSON.stringify({ ...summary, samples: results.map((r) => r.samples) }, null, 2)}\n`);
  if (values.json) {
    console.log(JSON.stringify(summary, null, 2));
  } else {
    console.log(`\n${markdown}\nWritten: ${join(outDir, 'kernels.md')}, kernels.json`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
