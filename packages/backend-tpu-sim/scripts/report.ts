/**
 * Ablation report (`pnpm --filter @lora/backend-tpu-sim report`): the seed's optimisations switched
 * on one by one on Llama-3.1 shapes, priced by the TPU cost model, plus the einsum variant, compile
 * counts with and without bucketing, and the estimated end-to-end LoRA slowdown next to the seed's
 * measured figures. Runs the simulator cost-only (shapes, no arithmetic) so 8k-token prefills of
 * 14336-wide layers take milliseconds. Writes bench-results/ablation.{md,json}.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Random, slotIndices } from '@lora/conformance';
import { computeMapping, type LoRAMapping } from '@lora/core';
import {
  CHIPS,
  estimateBaseStep,
  estimateLoRAStep,
  FLAG_NAMES,
  LLAMA_3_1_8B,
  LLAMA_3_1_70B_TP8,
  type LlamaShape,
  priceLayer,
  resolveTpuSimOptions,
  TpuSim,
  type TpuSimFlags,
} from '../src/index.js';

interface Model extends LlamaShape {
  /** Seed's measured throughput without and with LoRA (tok/s). */
  seed: { base: number; lora: number; what: string };
}

const MODELS: Model[] = [
  { ...LLAMA_3_1_8B, seed: { base: 1621.62, lora: 1426.01, what: 'MLPerf offline' } },
  { ...LLAMA_3_1_70B_TP8, seed: { base: 432.96, lora: 326.71, what: 'MLPerf offline' } },
];

const RANK = 16;
const ADAPTERS = 8;
const DECODE = [64, 128, 256];
const PREFILL = [128, 512, 2048, 8192];
const MAX_TOKENS = 8192;

type Kind = 'decode' | 'decode, 1 adapter' | 'prefill';

/** Every token has an adapter: decode picks one at random per sequence, prefill comes in request runs. */
function mapping(tokens: number, kind: Kind, seed: number): LoRAMapping {
  const rng = new Random(seed);
  const pattern = kind === 'decode' ? 'random' : kind === 'prefill' ? 'requests' : 'single';
  const slots = slotIndices(rng, pattern, tokens, ADAPTERS).map((s) => Math.max(s, 0));
  return computeMapping(slots, { maxLoras: ADAPTERS, maxNumTokens: MAX_TOKENS });
}

/** The seed's order: each step adds one optimisation to the previous one. */
function ablationSteps(): Array<{ label: string; options: Record<string, unknown> }> {
  const steps: Array<{ label: string; options: Record<string, unknown> }> = [
    { label: 'first kernel (all off)', options: { preset: 'all-off' } },
  ];
  const flags: Partial<TpuSimFlags> = {};
  for (const name of FLAG_NAMES) {
    flags[name] = true;
    steps.push({ label: `+ ${name}`, options: { preset: 'all-off', flags: { ...flags } } });
  }
  steps.push({ label: 'einsum one-hot (vLLM final)', options: { preset: 'einsum' } });
  return steps;
}

/** Programs compiled over a random 200-batch serving trace (T 1–4096, 1–8 adapters) on one model's modules. */
function compiles(m: Model, options: Record<string, unknown>): number {
  const sim = new TpuSim(resolveTpuSimOptions(options), { costOnly: true });
  const rng = new Random(200);
  for (let i = 0; i < 200; i++) {
    const T = rng.int(1, 4096);
    const slots = slotIndices(rng, rng.pick(['random', 'single', 'requests'] as const), T, rng.int(1, ADAPTERS));
    const meta = computeMapping(slots, { maxLoras: ADAPTERS, maxNumTokens: 4096 });
    if (meta.noLoRA) continue; // core skips the kernels for such batches
    priceLayer(sim, m, meta, { adapters: ADAPTERS, rank: RANK });
  }
  return sim.cache.compiled;
}

const pct = (x: number) => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)} %`;
const us = (s: number) => (s * 1e6 >= 100 ? (s * 1e6).toFixed(0) : (s * 1e6).toFixed(1));

function main(): void {
  const chip = CHIPS.v6e;
  const scenarios: Array<{ kind: Kind; tokens: number; sampled: number }> = [
    ...DECODE.map((T) => ({ kind: 'decode' as const, tokens: T, sampled: T })),
    { kind: 'decode, 1 adapter', tokens: 128, sampled: 128 },
    ...PREFILL.map((T) => ({ kind: 'prefill' as const, tokens: T, sampled: 1 })),
  ];
  const steps = ablationSteps();
  const json: Record<string, unknown> = {
    chip: chip.name,
    chipSpec: chip,
    stepOverheadMicros: 0.35,
    rank: RANK,
    adapters: ADAPTERS,
    models: [] as unknown[],
  };
  const md: string[] = [
    "# tpu-sim ablation: the seed's multi-LoRA optimisations on Llama-3.1 shapes",
    '',
    `Cost model: TPU ${chip.name} (${chip.peakBf16Flops / 1e12} TFLOP/s bf16, ${chip.hbmBytesPerSecond / 1e9} GB/s HBM, ` +
      `${chip.mxu}×${chip.mxu} MXU), 0.35 µs per grid step; per op time = max(MXU, HBM) + steps × overhead. ` +
      `Rank ${RANK}, ${ADAPTERS} adapters, LoRA on q/k/v/o/gate/up/down of every layer; decode tokens pick adapters at random, ` +
      'prefill tokens come in request runs. Times are per model step, per chip: the LoRA kernels (and the per-call weight ' +
      'transpose where pre-transposition is off), without the float32-API glue (casts, lane gather/scatter, add into y) that a bf16 TPU ' +
      'pipeline fuses or does not need; the JSON has both (`seconds`, `secondsWithApiGlue`).',
    '',
  ];
  const summary: string[] = [];
  for (const m of MODELS) {
    const entry: Record<string, unknown> = { model: m.name, scenarios: [] as unknown[] };
    (json.models as unknown[]).push(entry);
    md.push(`## ${m.name}`, '', "### LoRA time per step (µs), optimisations switched on in the seed's order", '');
    md.push(`| variant | ${scenarios.map((s) => `${s.kind} ${s.tokens}`).join(' | ')} |`);
    md.push(`|---|${scenarios.map(() => '---:').join('|')}|`);
    const table = steps.map((st) => ({ label: st.label, values: [] as ReturnType<typeof estimateLoRAStep>[] }));
    scenarios.forEach((sc, i) => {
      const meta = mapping(sc.tokens, sc.kind, 1000 + i);
      steps.forEach((st, k) => {
        table[k]!.values.push(estimateLoRAStep(m, st.options, meta, { adapters: ADAPTERS, rank: RANK }));
      });
    });
    for (const row of table) md.push(`| ${row.label} | ${row.values.map((v) => us(v.seconds)).join(' | ')} |`);
    md.push('', '### Estimated end-to-end LoRA slowdown (throughput change vs the base model step)', '');
    md.push(
      '| scenario | base step (µs) | LoRA all-off | LoRA all-on | LoRA einsum | slowdown all-off | slowdown all-on | slowdown einsum |',
    );
    md.push('|---|---:|---:|---:|---:|---:|---:|---:|');
    const allOn = steps.findIndex((s) => s.label === '+ bucketing');
    const einsum = steps.length - 1;
    scenarios.forEach((sc, i) => {
      const base = estimateBaseStep(m, chip, { tokens: sc.tokens, sampled: sc.sampled }).seconds;
      const [off, on, ein] = [table[0]!.values[i]!, table[allOn]!.values[i]!, table[einsum]!.values[i]!];
      const slow = (l: number) => base / (base + l) - 1;
      md.push(
        `| ${sc.kind} ${sc.tokens} | ${us(base)} | ${us(off.seconds)} | ${us(on.seconds)} | ${us(ein.seconds)} | ${pct(slow(off.seconds))} | ${pct(slow(on.seconds))} | ${pct(slow(ein.seconds))} |`,
      );
      (entry.scenarios as unknown[]).push({
        ...sc,
        baseSeconds: base,
        ablation: table.map((row) => ({ variant: row.label, ...row.values[i] })),
        slowdown: { allOff: slow(off.seconds), allOn: slow(on.seconds), einsum: slow(ein.seconds) },
      });
    });
    const seedSlow = m.seed.lora / m.seed.base - 1;
    const d128 = scenarios.findIndex((sc) => sc.kind === 'decode' && sc.tokens === 128);
    const base128 = estimateBaseStep(m, chip, { tokens: 128, sampled: 128 }).seconds;
    const at = (row: number) => base128 / (base128 + table[row]!.values[d128]!.seconds) - 1;
    summary.push(`${m.name}: all-on ${pct(at(allOn))}, einsum ${pct(at(einsum))} at decode 128 vs the seed's ${pct(seedSlow)}`);
    md.push('', `Seed (measured, ${m.seed.what}): ${m.seed.base} → ${m.seed.lora} tok/s = **${pct(seedSlow)}**.`, '');
    entry.seed = { ...m.seed, slowdown: seedSlow };
    const c = {
      allOnBucketed: compiles(m, { preset: 'all-on' }),
      allOnUnbucketed: compiles(m, { preset: 'all-on', flags: { bucketing: false } }),
      einsumBucketed: compiles(m, { preset: 'einsum' }),
      einsumUnbucketed: compiles(m, { preset: 'einsum', flags: { bucketing: false } }),
    };
    entry.compiles = c;
    md.push(
      '### Programs compiled over a random 200-batch trace (T 1–4096, 1–8 adapters, all modules of a layer)',
      '',
      '| variant | with bucketing | without |',
      '|---|---:|---:|',
      `| Pallas all-on | ${c.allOnBucketed} | ${c.allOnUnbucketed} |`,
      `| einsum | ${c.einsumBucketed} | ${c.einsumUnbucketed} |`,
      '',
    );
  }
  md.push(
    "## Why the estimates differ from the seed's measurements",
    '',
    ...summary.map((line) => `- ${line}.`),
    '',
    "The model is more pessimistic about the Pallas kernels than the seed's measurements, and the einsum lands nearest to them. Reasons:",
    '',
    '- The base step here is a roofline of the linear layers only (weights read once at HBM bandwidth, or their FLOPs): no attention, KV-cache reads, ' +
      'sampling, host scheduling or collectives. A real step is longer, so the same LoRA time is a smaller fraction of it: the estimate overstates the ' +
      'slowdown where the real base step has overheads the model omits, and for 70B the tensor-parallel all-reduces (which LoRA also adds to) are missing entirely.',
    '- Padding as the seed specifies it: with 8 adapters n = 9 slots (the zero slot included), so rank 16 is padded to 32, 8 lanes fill a tile and the ' +
      'ninth slot needs a second 256-wide group: the kernels move and multiply 512 rank columns where 144 are real. The shrink and expand weight ' +
      "blocks are fetched again for every 128-token block (bT is capped at 128), so prefill pays T/128 reads of all adapters' padded weights. A real " +
      'kernel may order its grid or pin blocks to avoid part of that; this model charges exactly what the BlockSpecs ask for.',
    '- MLPerf offline mixes prefill and decode in one throughput number at the batch sizes the seed chose; the tables show each regime separately.',
    '- The model has no compile time, no host-side input preparation and no fusion: the seed measured those too (recompiles were one of its fixes), ' +
      "and the einsum's advantage in vLLM came partly from XLA fusing it with neighbouring ops, which this model credits only as a missing grid.",
    '- Per-grid-step overhead (0.35 µs a step) is close to half the time of the small decode kernels; it is a quoted figure, not a measurement on this workload, and the ' +
      'estimates move with it (`stepOverheadMicros`).',
    '',
  );
  const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'bench-results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'ablation.md'), `${md.join('\n')}\n`);
  writeFileSync(join(dir, 'ablation.json'), `${JSON.stringify(json, null, 2)}\n`);
  console.log(md.join('\n'));
  console.log(`\nwrote ${join(dir, 'ablation.md')} and ablation.json`);
}

main();
