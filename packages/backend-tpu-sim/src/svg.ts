/**
 * Small dependency-free SVG charts for the calibration report: slowdown heatmaps drawn next to the
 * measured range, and the einsum-vs-Pallas crossover panels.
 */

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** White at 0 to deep red at `worst` (a negative slowdown, e.g. −0.5). */
function slowdownColor(v: number, worst: number): string {
  const t = Math.max(0, Math.min(1, v / worst));
  const r = 255;
  const g = Math.round(255 - 190 * t);
  const b = Math.round(255 - 200 * t);
  return `rgb(${r},${g},${b})`;
}

/** One panel of a {@link SlowdownHeatmap}: one variant's cells. */
export interface HeatmapPanel {
  /** Panel heading, also its label in the scale bar's legend (e.g. 'Pallas all-on (PR 15655 kernels)'). */
  readonly title: string;
  /** values[row][col]: throughput change with LoRA, e.g. −0.12. */
  readonly values: readonly (readonly number[])[];
}

/** Input of {@link slowdownHeatmapSvg}: a grid of throughput changes per panel, and the measured range to draw beside them. */
export interface SlowdownHeatmap {
  /** Chart title. */
  readonly title: string;
  /** Axis label of the rows (e.g. 'concurrency'), drawn vertically on the left. */
  readonly rowLabel: string;
  /** Axis label of the columns (e.g. input tokens), drawn under each panel. */
  readonly colLabel: string;
  /** Row headings, top to bottom; `values[i]` of every panel belongs to `rows[i]`. */
  readonly rows: readonly (number | string)[];
  /** Column headings, left to right; `values[i][j]` belongs to `cols[j]`. */
  readonly cols: readonly (number | string)[];
  /** Panels side by side, each with the same rows and columns. */
  readonly panels: readonly HeatmapPanel[];
  /** Measured [best, worst] slowdown of the figure this reproduces, drawn on the scale bar. */
  readonly measured: readonly [number, number];
  /** Footnote under the chart (sources, setup); omitted when absent. */
  readonly note?: string;
}

const pct = (v: number): string => `${(100 * v).toFixed(1)}%`;

/** Panels of cells (rows × cols) plus a scale bar with the measured range and each panel's range. */
export function slowdownHeatmapSvg(h: SlowdownHeatmap): string {
  const cell = { w: 62, h: 30 };
  const left = 70;
  const top = 56;
  const gap = 40;
  const gridW = h.cols.length * cell.w;
  const gridH = h.rows.length * cell.h;
  const barX = left + h.panels.length * (gridW + gap) + 30;
  const barH = Math.max(gridH, 200);
  const width = barX + 380;
  const height = top + Math.max(gridH + 40, barH + 30) + (h.note ? 20 : 0);
  const worst = Math.min(-0.5, ...h.panels.flatMap((p) => p.values.flat()), h.measured[1]);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<title>${esc(h.title)}</title>`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${left}" y="18" font-size="14" font-weight="bold">${esc(h.title)}</text>`,
  ];
  h.panels.forEach((p, k) => {
    const x0 = left + k * (gridW + gap);
    out.push(`<text x="${x0}" y="${top - 22}" font-size="12" font-weight="bold">${esc(p.title)}</text>`);
    h.cols.forEach((c, j) => {
      out.push(`<text x="${x0 + j * cell.w + cell.w / 2}" y="${top - 6}" text-anchor="middle">${esc(String(c))}</text>`);
    });
    h.rows.forEach((r, i) => {
      if (k === 0) out.push(`<text x="${x0 - 8}" y="${top + i * cell.h + cell.h / 2 + 4}" text-anchor="end">${esc(String(r))}</text>`);
      h.cols.forEach((_, j) => {
        const v = p.values[i]?.[j];
        const x = x0 + j * cell.w;
        const y = top + i * cell.h;
        if (v === undefined || !Number.isFinite(v)) {
          out.push(`<rect x="${x}" y="${y}" width="${cell.w}" height="${cell.h}" fill="#eee" stroke="#ccc"/>`);
          return;
        }
        out.push(`<rect x="${x}" y="${y}" width="${cell.w}" height="${cell.h}" fill="${slowdownColor(v, worst)}" stroke="#ccc"/>`);
        out.push(`<text x="${x + cell.w / 2}" y="${y + cell.h / 2 + 4}" text-anchor="middle">${pct(v)}</text>`);
      });
    });
    out.push(`<text x="${x0 + gridW / 2}" y="${top + gridH + 18}" text-anchor="middle">${esc(h.colLabel)}</text>`);
  });
  out.push(
    `<text x="14" y="${top + gridH / 2}" transform="rotate(-90 14 ${top + gridH / 2})" text-anchor="middle">${esc(h.rowLabel)}</text>`,
  );
  // Scale bar: 0 at the top, `worst` at the bottom; the measured range and each panel's range as brackets beside it.
  const barTop = top;
  const yOf = (v: number) => barTop + (v / worst) * barH;
  for (let s = 0; s < 40; s++) {
    const v0 = (worst * s) / 40;
    const v1 = (worst * (s + 1)) / 40;
    out.push(
      `<rect x="${barX}" y="${yOf(v0)}" width="14" height="${yOf(v1) - yOf(v0) + 0.5}" fill="${slowdownColor((v0 + v1) / 2, worst)}"/>`,
    );
  }
  for (let v = 0; v >= worst - 1e-9; v -= 0.1) {
    out.push(`<line x1="${barX}" x2="${barX + 14}" y1="${yOf(v)}" y2="${yOf(v)}" stroke="#555"/>`);
    out.push(`<text x="${barX - 4}" y="${yOf(v) + 4}" text-anchor="end" font-size="9">${Math.round(v * 100)}%</text>`);
  }
  const colors = ['#000', '#c0392b', '#2471a3', '#7d3c98'];
  const ranges: Array<{ label: string; lo: number; hi: number }> = [
    { label: `measured (PR 15655)`, lo: h.measured[0], hi: h.measured[1] },
    ...h.panels.map((p) => {
      const vs = p.values.flat().filter(Number.isFinite);
      return { label: `model, ${p.title}`, lo: Math.max(...vs), hi: Math.min(...vs) };
    }),
  ];
  ranges.forEach((r, k) => {
    const color = colors[k % colors.length] as string;
    const x = barX + 24 + 10 * k;
    out.push(`<line x1="${x}" x2="${x}" y1="${yOf(r.lo)}" y2="${yOf(r.hi)}" stroke="${color}" stroke-width="5"/>`);
    const ly = top + 14 + 16 * k;
    const lx = barX + 24 + 10 * ranges.length + 12;
    out.push(`<line x1="${lx}" x2="${lx + 14}" y1="${ly - 4}" y2="${ly - 4}" stroke="${color}" stroke-width="5"/>`);
    out.push(`<text x="${lx + 20}" y="${ly}" fill="${color}">${esc(r.label)}: ${pct(r.lo)} … ${pct(r.hi)}</text>`);
  });
  if (h.note) out.push(`<text x="${left}" y="${height - 8}" font-size="10" fill="#444">${esc(h.note)}</text>`);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** One panel of {@link crossoverSvg}: einsum-over-Pallas time ratios for one model and chip. */
export interface CrossoverPanelData {
  /** Panel heading (model and chip). */
  readonly title: string;
  /** `max_loras` of each column, left to right. */
  readonly maxLoras: readonly number[];
  /** Distinct adapters in the batch of each row; the first entry is drawn at the bottom. */
  readonly distinct: readonly number[];
  /** einsum seconds / Pallas seconds, by [distinct][maxLoras]; undefined where distinct > max_loras. */
  readonly ratio: readonly (readonly (number | undefined)[])[];
}

/** 2×2 (or n) panels: green where the Pallas kernels are faster (ratio > 1), blue where the einsum is. */
export function crossoverSvg(title: string, panels: readonly CrossoverPanelData[], note: string): string {
  const cell = { w: 40, h: 24 };
  const left = 70;
  const top = 50;
  const cols = 2;
  const first = panels[0] as CrossoverPanelData;
  const pw = first.maxLoras.length * cell.w;
  const ph = first.distinct.length * cell.h;
  const gapX = 90;
  const gapY = 80;
  const rowsOfPanels = Math.ceil(panels.length / cols);
  const width = left + cols * (pw + gapX);
  const height = top + rowsOfPanels * (ph + gapY) + 30;
  const color = (r: number) => {
    const t = Math.max(-1, Math.min(1, Math.log2(r) / 3));
    if (t >= 0) return `rgb(${Math.round(255 - 150 * t)},${Math.round(255 - 40 * t)},${Math.round(255 - 150 * t)})`;
    return `rgb(${Math.round(255 + 150 * t)},${Math.round(255 + 90 * t)},255)`;
  };
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="10">`,
    `<title>${esc(title)}</title>`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${left}" y="18" font-size="14" font-weight="bold">${esc(title)}</text>`,
  ];
  panels.forEach((p, k) => {
    const x0 = left + (k % cols) * (pw + gapX);
    const y0 = top + Math.floor(k / cols) * (ph + gapY);
    out.push(`<text x="${x0}" y="${y0 - 8}" font-size="12" font-weight="bold">${esc(p.title)}</text>`);
    p.distinct.forEach((d, i) => {
      // Largest distinct at the top.
      const row = p.distinct.length - 1 - i;
      out.push(`<text x="${x0 - 6}" y="${y0 + row * cell.h + cell.h / 2 + 4}" text-anchor="end">${d}</text>`);
      p.maxLoras.forEach((_, j) => {
        const r = p.ratio[i]?.[j];
        const x = x0 + j * cell.w;
        const y = y0 + row * cell.h;
        if (r === undefined) {
          out.push(`<rect x="${x}" y="${y}" width="${cell.w}" height="${cell.h}" fill="#f4f4f4" stroke="#ddd"/>`);
          return;
        }
        out.push(`<rect x="${x}" y="${y}" width="${cell.w}" height="${cell.h}" fill="${color(r)}" stroke="#ddd"/>`);
        out.push(`<text x="${x + cell.w / 2}" y="${y + cell.h / 2 + 4}" text-anchor="middle">${r.toFixed(r >= 10 ? 0 : 1)}</text>`);
      });
    });
    p.maxLoras.forEach((n, j) => {
      out.push(`<text x="${x0 + j * cell.w + cell.w / 2}" y="${y0 + ph + 14}" text-anchor="middle">${n}</text>`);
    });
    out.push(`<text x="${x0 + pw / 2}" y="${y0 + ph + 30}" text-anchor="middle">max_loras</text>`);
    out.push(
      `<text x="${x0 - 40}" y="${y0 + ph / 2}" transform="rotate(-90 ${x0 - 40} ${y0 + ph / 2})" text-anchor="middle">distinct adapters in the batch</text>`,
    );
  });
  out.push(`<text x="${left}" y="${height - 10}" fill="#444">${esc(note)}</text>`);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
