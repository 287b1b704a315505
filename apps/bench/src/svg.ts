/** Hand-written SVG figures (no chart library: the bench must run offline and stay small). */

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

const FONT = 'font-family="system-ui, sans-serif"';

export interface HeatmapInput {
  title: string;
  rowLabel: string;
  colLabel: string;
  rows: readonly string[];
  cols: readonly string[];
  /** values[row][col]; null for a cell that was not measured. */
  values: ReadonlyArray<ReadonlyArray<number | null>>;
  /** Cell text, e.g. `v => (100 * v).toFixed(1) + ' %'`. */
  format: (v: number) => string;
  /** Value drawn at full colour (default: the largest value); larger ones are drawn at full colour too. */
  max?: number;
  /** Cells whose measurement did not tell the effect from noise: drawn grey, labelled "noise". */
  noise?: ReadonlyArray<ReadonlyArray<boolean>>;
}

/** White (0) to red (max) for slowdowns; negative values (LoRA measured faster: noise) in blue. */
function colour(v: number, max: number): string {
  const t = Math.max(-1, Math.min(1, v / (max || 1)));
  const mix = (a: number, b: number, k: number) => Math.round(a + (b - a) * k);
  return t >= 0 ? `rgb(255,${mix(255, 64, t)},${mix(255, 48, t)})` : `rgb(${mix(255, 80, -t)},${mix(255, 140, -t)},255)`;
}

/** A heatmap like vLLM PR 15655's GenAI-Perf slowdown figures: one coloured, labelled cell per value. */
export function heatmapSvg(h: HeatmapInput): string {
  const cell = { w: 92, h: 34 };
  const left = 120;
  const top = 70;
  // Wide enough for the title (under 9.5 px per character, bold at 15 px) and tall enough for the rotated row label.
  const width = Math.max(left + cell.w * h.cols.length + 20, Math.ceil(9.5 * h.title.length) + 40);
  const height = Math.max(top + cell.h * h.rows.length + 40, 7 * h.rowLabel.length + top);
  const finite = h.values.flat().filter((v): v is number => v !== null && Number.isFinite(v));
  const max = h.max ?? Math.max(...finite.map(Math.abs), 1e-9);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT}>`,
    `<title>${esc(h.title)}</title>`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="15" font-weight="600">${esc(h.title)}</text>`,
    `<text x="${left + (cell.w * h.cols.length) / 2}" y="${top - 26}" text-anchor="middle" font-size="12">${esc(h.colLabel)}</text>`,
    `<text x="18" y="${top + (cell.h * h.rows.length) / 2}" font-size="12" transform="rotate(-90 18 ${top + (cell.h * h.rows.length) / 2})" text-anchor="middle">${esc(h.rowLabel)}</text>`,
  ];
  h.cols.forEach((c, j) => {
    parts.push(`<text x="${left + j * cell.w + cell.w / 2}" y="${top - 8}" text-anchor="middle" font-size="12">${esc(c)}</text>`);
  });
  h.rows.forEach((r, i) => {
    const y = top + i * cell.h;
    parts.push(`<text x="${left - 8}" y="${y + cell.h / 2 + 4}" text-anchor="end" font-size="12">${esc(r)}</text>`);
    h.cols.forEach((_, j) => {
      const v = h.values[i]?.[j] ?? null;
      const x = left + j * cell.w;
      const missing = v === null || !Number.isFinite(v);
      const noise = !missing && h.noise?.[i]?.[j] === true;
      const fill = missing ? '#eeeeee' : noise ? '#f4f4f4' : colour(v, max);
      parts.push(`<rect x="${x}" y="${y}" width="${cell.w}" height="${cell.h}" fill="${fill}" stroke="white"/>`);
      const text = missing ? '—' : noise ? 'noise' : h.format(v);
      parts.push(`<text x="${x + cell.w / 2}" y="${y + cell.h / 2 + 4}" text-anchor="middle" font-size="12">${esc(text)}</text>`);
    });
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

interface RooflinePoint {
  label: string;
  /** Flops per byte moved. */
  intensity: number;
  /** Achieved GFLOP/s. */
  gflops: number;
}

export interface RooflineInput {
  title: string;
  /** Memory roof: GB/s (the copy rate measured in the same run). */
  bandwidthGBps: number;
  /** Compute roof: GFLOP/s (the base matmul's best rate in the same run). */
  peakGflops: number;
  points: readonly RooflinePoint[];
}

/** The classic log-log roofline: min(peak, bandwidth × intensity), with the measured kernels as dots. */
export function rooflineSvg(r: RooflineInput): string {
  const W = 640;
  const H = 420;
  const m = { l: 70, r: 20, t: 44, b: 56 };
  const xs = r.points.map((p) => p.intensity).filter((v) => v > 0);
  const ys = r.points.map((p) => p.gflops).filter((v) => v > 0);
  const xMin = 10 ** Math.floor(Math.log10(Math.min(...xs, 0.1)));
  const xMax = 10 ** Math.ceil(Math.log10(Math.max(...xs, (2 * r.peakGflops) / r.bandwidthGBps)));
  const yMin = 10 ** Math.floor(Math.log10(Math.min(...ys, r.bandwidthGBps * xMin)));
  const yMax = 10 ** Math.ceil(Math.log10(Math.max(...ys, r.peakGflops)));
  const px = (x: number) => m.l + ((Math.log10(x) - Math.log10(xMin)) / (Math.log10(xMax) - Math.log10(xMin))) * (W - m.l - m.r);
  const py = (y: number) => H - m.b - ((Math.log10(y) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))) * (H - m.t - m.b);
  const ridge = r.peakGflops / r.bandwidthGBps;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ${FONT}>`,
    `<title>${esc(r.title)}</title>`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="600">${esc(r.title)}</text>`,
  ];
  for (let d = Math.log10(xMin); d <= Math.log10(xMax); d++) {
    const x = px(10 ** d);
    parts.push(`<line x1="${x}" y1="${m.t}" x2="${x}" y2="${H - m.b}" stroke="#eee"/>`);
    parts.push(`<text x="${x}" y="${H - m.b + 16}" text-anchor="middle" font-size="11">${10 ** d}</text>`);
  }
  for (let d = Math.log10(yMin); d <= Math.log10(yMax); d++) {
    const y = py(10 ** d);
    parts.push(`<line x1="${m.l}" y1="${y}" x2="${W - m.r}" y2="${y}" stroke="#eee"/>`);
    parts.push(`<text x="${m.l - 6}" y="${y + 4}" text-anchor="end" font-size="11">${10 ** d}</text>`);
  }
  parts.push(
    `<polyline fill="none" stroke="#333" stroke-width="2" points="${px(xMin)},${py(r.bandwidthGBps * xMin)} ${px(ridge)},${py(r.peakGflops)} ${px(xMax)},${py(r.peakGflops)}"/>`,
    `<text x="${px(xMin) + 8}" y="${py(r.bandwidthGBps * xMin) - 8}" font-size="11">copy ${r.bandwidthGBps.toFixed(1)} GB/s</text>`,
    `<text x="${px(xMax) - 4}" y="${py(r.peakGflops) - 6}" text-anchor="end" font-size="11">base matmul ${r.peakGflops.toFixed(1)} GFLOP/s</text>`,
    `<text x="${W / 2}" y="${H - 14}" text-anchor="middle" font-size="12">arithmetic intensity (flop / byte moved)</text>`,
    `<text x="16" y="${H / 2}" font-size="12" transform="rotate(-90 16 ${H / 2})" text-anchor="middle">GFLOP/s</text>`,
  );
  for (const p of r.points) {
    if (!(p.intensity > 0 && p.gflops > 0)) continue;
    parts.push(
      `<circle cx="${px(p.intensity)}" cy="${py(p.gflops)}" r="4" fill="#d9480f" fill-opacity="0.75"><title>${esc(p.label)}</title></circle>`,
    );
  }
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
