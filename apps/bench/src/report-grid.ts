import { inherentShare } from '@lora/llama';
import { baseFlops, type GridResult, gbps } from './grid.js';
import type { HeatmapResult } from './heatmap.js';
import { ranksLabel } from './model-adapters.js';
import { markdownTable, ms, pct } from './report.js';
import { heatmapSvg, type RooflineInput, rooflineSvg } from './svg.js';

const times = (x: number | undefined): string => (x === undefined ? '—' : `${x.toFixed(1)}×`);

/** One row per grid point: our kernel's time, the ratios to the naive composition, the loop and the base matmul. */
export function gridTable(g: GridResult, copyGBps?: number): string {
  const header = ['T', 'adapters', 'rank', 'LoRA ms', 'min–max ms', '× naive', '× loop', 'share of base'];
  if (copyGBps !== undefined) header.push('GB/s', 'of copy rate');
  const estimates = g.points.some((p) => p.estimatedMicros !== undefined);
  if (estimates) header.push('cost model µs');
  const rows = [header];
  for (const p of g.points) {
    const row = [
      String(p.shape.numTokens),
      String(p.shape.numAdapters),
      String(p.shape.rank),
      ms(p.lora.median),
      `${ms(p.lora.min)}–${ms(p.lora.max)}`,
      times(p.naiveOverLoRA),
      times(p.loopOverLoRA),
      pct(p.loraShareOfBase),
    ];
    if (copyGBps !== undefined) {
      const rate = gbps(p.bytes, p.lora.median);
      row.push(rate.toFixed(2), pct(rate / copyGBps));
    }
    if (estimates) row.push(p.estimatedMicros?.toFixed(1) ?? '—');
    rows.push(row);
  }
  const s = g.points[0]?.shape;
  const notes = [
    `Programs compiled during the grid: ${g.programsCompiled}.`,
    ...g.notes.map((n) => `${n[0]?.toUpperCase()}${n.slice(1)}.`),
  ];
  return `### Grid on ${g.backend}${s ? ` (H = ${s.hidden}, O = ${s.out})` : ''}\n\n${markdownTable(rows)}\n\n${notes.join(' ')}`;
}

/** LoRA share of the base matmul over the grid: rows = tokens, columns = adapters × rank. */
export function gridSvg(g: GridResult): string {
  const rows = [...new Set(g.points.map((p) => p.shape.numTokens))];
  const cols = [...new Set(g.points.map((p) => `n=${p.shape.numAdapters} r=${p.shape.rank}`))];
  const values = rows.map((T) =>
    cols.map(
      (c) => g.points.find((p) => p.shape.numTokens === T && `n=${p.shape.numAdapters} r=${p.shape.rank}` === c)?.loraShareOfBase ?? null,
    ),
  );
  return heatmapSvg({
    title: `addLoRALinear time as a share of the base matmul — ${g.backend}`,
    rowLabel: 'tokens T',
    colLabel: 'distinct adapters n, rank r',
    rows: rows.map(String),
    cols,
    values,
    format: (v) => `${(100 * v).toFixed(1)} %`,
    // As long as the base matmul itself: full red.
    max: 1,
  });
}

export function heatmapTable(h: HeatmapResult): string {
  const rows = [['input length', ...h.axes.concurrency.map((c) => `concurrency ${c}`)]];
  for (const length of h.axes.lengths) {
    rows.push([
      String(length),
      ...h.axes.concurrency.map((c) => {
        const cell = h.cells.find((x) => x.length === length && x.concurrency === c);
        return cell ? heatmapCellText(cell) : '—';
      }),
    ]);
  }
  const skipped = h.skipped.map((s) => `${s.length} × ${s.concurrency}: ${s.reason}`);
  return (
    `### LoRA slowdown of a decode forward on ${h.backend} (model "${h.preset}", ${h.adapters} adapters of ${ranksLabel(h.rank, h.ranks)} on every linear module)\n\n` +
    `${markdownTable(rows)}\n\n${h.note ?? MEASURED_NOTE}` +
    (skipped.length > 0 ? ` Not measured: ${skipped.join('; ')}.` : '')
  );
}

const MEASURED_NOTE =
  'Each cell: one decode step of that many sequences whose KV caches hold that many tokens, time with LoRA / time on the base model − 1 ' +
  '(the median over 20 rounds, or ≥ 5 where a minute of LoRA steps runs out first, each round timing both back to back in alternating order); in brackets the interquartile range of the ' +
  'per-round slowdowns. A cell whose range reaches 0 % says "within noise": its rounds do not tell the cost apart from zero. ' +
  '"must": what LoRA has to cost in that step — the larger of its bytes (the distinct adapters\' A and B at their true rank) over the ' +
  "base step's bytes (weights and KV cache) and its FLOPs over the base step's (issue #17's inherent share).";

/** A fraction as a percentage with one decimal, no unit (the cell adds it once). */
const points = (v: number) => (100 * v).toFixed(1);

/** One heatmap cell as the report prints it: the slowdown or "within noise", its spread, and what it must cost. */
export function heatmapCellText(cell: HeatmapResult['cells'][number]): string {
  const range = cell.spread ? ` [${points(cell.spread.low)}, ${points(cell.spread.high)}]` : '';
  const measured = cell.withinNoise ? `within noise${range}` : `${points(cell.slowdown)} %${range}`;
  return cell.inherent ? `${measured} · must ${points(inherentShare(cell.inherent))} %` : measured;
}

export function heatmapSvgOf(h: HeatmapResult): string {
  return heatmapSvg({
    title: `LoRA slowdown, decode forward — ${h.backend}, model "${h.preset}"`,
    rowLabel: 'input length (tokens cached)',
    colLabel: 'concurrency (sequences per step)',
    rows: h.axes.lengths.map(String),
    cols: h.axes.concurrency.map(String),
    values: h.axes.lengths.map((l) =>
      h.axes.concurrency.map((c) => h.cells.find((x) => x.length === l && x.concurrency === c)?.slowdown ?? null),
    ),
    format: (v) => `${(100 * v).toFixed(1)} %`,
    // Noise is not a result: those cells say so instead of showing a number (or a blue "speed-up").
    noise: h.axes.lengths.map((l) =>
      h.axes.concurrency.map((c) => h.cells.find((x) => x.length === l && x.concurrency === c)?.withinNoise ?? false),
    ),
  });
}

/** The CPU roofline: each grid point's achieved GFLOP/s at its intensity, under the copy-rate and base-matmul roofs. */
export function rooflineOf(g: GridResult, copyGBps: number): RooflineInput {
  const peakGflops = Math.max(...g.points.map((p) => baseFlops(p.shape) / (p.base.median * 1e6)));
  return {
    title: `Roofline — ${g.backend} (H = ${g.points[0]?.shape.hidden ?? '?'})`,
    bandwidthGBps: copyGBps,
    peakGflops,
    points: g.points.map((p) => ({ label: p.shape.name, intensity: p.flops / p.bytes, gflops: p.flops / (p.lora.median * 1e6) })),
  };
}

export const rooflineSvgOf = (g: GridResult, copyGBps: number): string => rooflineSvg(rooflineOf(g, copyGBps));
