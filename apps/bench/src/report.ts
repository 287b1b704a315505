import { inherentShare } from '@lora/llama';
import type { ActivationResult, ParseResult } from './adapters.js';
import type { ShapeResult, Target } from './kernels.js';
import { decodeTokensPerSecond, type ModelBenchResult, tokensPerSecond } from './model.js';
import { ranksLabel } from './model-adapters.js';

export const ms = (x: number): string => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
export const pct = (x: number): string => `${(100 * x).toFixed(2)} %`;

export function markdownTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const line = (r: string[]) => `| ${r.map((cell, c) => cell.padEnd(widths[c]!)).join(' | ')} |`;
  return [line(rows[0]!), `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`, ...rows.slice(1).map(line)].join('\n');
}

export function kernelTable(results: readonly ShapeResult[]): string {
  const parts: string[] = [];
  for (const r of results) {
    const s = r.shape;
    const lora = r.samples.lora!.median;
    const rows = [['method', 'median ms', 'min–max ms', 'samples', '× LoRA time']];
    for (const sample of Object.values(r.samples)) {
      rows.push([
        sample.label,
        ms(sample.median),
        `${ms(sample.min)}–${ms(sample.max)}`,
        String(sample.times.length),
        `${(sample.median / lora).toFixed(1)}×`,
      ]);
    }
    const shares = [
      r.ratios.loraShareOfBaseCpu !== undefined ? `engine js ${pct(r.ratios.loraShareOfBaseCpu)} of the tfjs-cpu base matmul` : undefined,
      r.ratios.loraShareOfBaseWasm !== undefined
        ? `engine js ${pct(r.ratios.loraShareOfBaseWasm)} of the tfjs-wasm base matmul`
        : undefined,
      r.ratios.simdShareOfBaseWasm !== undefined
        ? `engine wasm ${pct(r.ratios.simdShareOfBaseWasm)} of the tfjs-wasm base matmul`
        : undefined,
    ].filter(Boolean);
    const bandwidth =
      r.ratios.simdBandwidthOfCopy !== undefined
        ? ` Engine wasm moves ${(r.bytes / 2 ** 20).toFixed(1)} MB at ${pct(r.ratios.simdBandwidthOfCopy)} of the ${r.copyGBps.toFixed(1)} GB/s Float32Array.set copy rate.`
        : '';
    parts.push(
      `### ${s.name}: T = ${s.numTokens}, ${s.numAdapters} adapters (${s.layout}), H = ${s.hidden}, O = ${s.out}, rank ${s.rank}\n\n${markdownTable(rows)}\n\n` +
        `LoRA overhead: ${shares.join(', ') || 'n/a (no base matmul measured)'}; contenders agree to ${r.disagreement.toExponential(1)} (relative).${bandwidth}`,
    );
    for (const g of [...(r.gpu ? [{ ...r.gpu, where: 'Node' }] : []), ...(r.browser ?? []).map((b) => ({ ...b, where: 'Chromium' }))]) {
      const lora = g.samples[`lora-${g.backend}`]!.median;
      const gpuRows = [['method', 'median ms', 'samples', '× LoRA time']];
      for (const sample of Object.values(g.samples))
        gpuRows.push([sample.label, ms(sample.median), String(sample.times.length), `${(sample.median / lora).toFixed(1)}×`]);
      parts.push(
        `#### ${s.name} on ${g.backend} in ${g.where}: T = ${g.shape.numTokens}, H = ${g.shape.hidden}, O = ${g.shape.out} (software-rendered here: compare ratios only)\n\n${markdownTable(gpuRows)}\n\nLoRA share of the ${g.backend} base matmul: ${pct(g.loraShareOfBase)}.`,
      );
    }
  }
  return parts.join('\n\n');
}

/** A target's measured value in its unit: a count, MB/s, µs, a share (%) where the goal has one, else a ratio (×). */
function targetValue(t: Target): string {
  if (t.unit === 'count') return String(t.value);
  if (t.unit === 'MB/s') return `${t.value.toFixed(0)} MB/s`;
  if (t.unit === 'µs') return `${t.value.toFixed(1)} µs`;
  return t.goal.includes('%') ? pct(t.value) : `${t.value.toFixed(1)}×`;
}

export function targetTable(targets: readonly Target[]): string {
  const rows = [['target', 'shape', 'measured', 'goal', 'met']];
  for (const t of targets) {
    rows.push([t.name, t.shape, targetValue(t), t.goal, t.met ? 'yes' : 'NO']);
  }
  return markdownTable(rows);
}

export function adapterTable(activation: ActivationResult, parses: readonly ParseResult[]): string {
  const act = markdownTable([
    ['modules', 'rank', 'adapter MB', 'activate ms (host copies)', 'upload ms (stacks the next forward reads)'],
    [
      String(activation.modules),
      String(activation.rank),
      activation.adapterMB.toFixed(1),
      ms(activation.activateMs),
      ms(activation.uploadMs),
    ],
  ]);
  const parse = markdownTable([
    ['dtype', 'file MB', 'tensors', 'parse ms', 'MB/s', 'tensors copied', 'decoded bytes / file bytes'],
    ...parses.map((p) => [
      p.dtype,
      p.fileMB.toFixed(1),
      String(p.tensors),
      ms(p.ms),
      p.mbPerSec.toFixed(0),
      String(p.copiedTensors),
      p.allocatedVsFile.toFixed(2),
    ]),
  ]);
  return `### Activating an adapter (every slot of a 4-layer Llama-shaped model)\n\n${act}\n\n### Parsing safetensors\n\n${parse}\n\nF32 data aligned in the file is returned as views (no copy); F16/BF16 are decoded in one pass (one copy, 2× their bytes).`;
}

export function modelTable(r: ModelBenchResult): string {
  const row = (label: string, s: ModelBenchResult['lora']) => [
    label,
    tokensPerSecond(s).toFixed(1),
    decodeTokensPerSecond(s).toFixed(1),
    ms(s.prefillMs),
    ms(s.decodeMs),
    String(s.steps),
  ];
  return (
    `### Demo model "${r.preset}" on ${r.backend}, ${r.requests} requests, ${r.adapters} distinct adapters, ${ranksLabel(r.rank, r.ranks)} on every linear module\n\n${markdownTable(
      [['run', 'tokens/s', 'decode tokens/s', 'prefill ms', 'decode ms', 'steps'], row('with LoRA', r.lora), row('without LoRA', r.base)],
    )}\n\nLoRA overhead: ${pct(r.overhead)} of the time per token (target ≤ 10 %, goal 5 %; round by round ${pct(r.overheadRange.low)} to ${pct(r.overheadRange.high)} over ${r.overheadRange.rounds} rounds). ` +
    `LoRA must cost ${pct(inherentShare(r.mustCost))} of a decode step of this queue (its bytes ${pct(r.mustCost.bytes)}, its FLOPs ${pct(r.mustCost.flops)} of the base step's).`
  );
}
