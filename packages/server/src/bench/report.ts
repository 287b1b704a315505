/** One measured cell: an input length at a concurrency, with LoRA or without. */
export interface CellResult {
  readonly inputLength: number;
  readonly concurrency: number;
  readonly mode: 'lora' | 'base';
  /** Requests that completed, and those that failed (with the first failure's message). */
  readonly requests: number;
  readonly failed: number;
  readonly firstError?: string;
  /** Output tokens per second of wall time (vLLM's "output token throughput"). */
  readonly tokensPerSecond: number;
  readonly ttftP50Ms: number;
  readonly ttftP99Ms: number;
  readonly itlP50Ms: number;
  readonly itlP99Ms: number;
}

/** LoRA against no LoRA at one input length and concurrency. */
export interface SlowdownCell {
  readonly inputLength: number;
  readonly concurrency: number;
  /** As the vLLM TPU multi-LoRA report computes it: (LoRA / baseline) − 1 of the time per output token (= baseline tokens/s ÷ LoRA tokens/s − 1). */
  readonly slowdown: number;
  /** The same for the median inter-token latency. */
  readonly itlSlowdown: number;
}

export interface Overhead {
  readonly concurrency: number;
  readonly inputLength: number;
  /** Output tokens/s through HTTP (streamed, the benchmark client) and with the engine in-process (`engine.add`), same requests. */
  readonly httpTokensPerSecond: number;
  readonly engineTokensPerSecond: number;
  /** engine / http − 1: the time the HTTP layer adds per token. */
  readonly overhead: number;
  readonly goal: number;
}

const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '–');
const pct = (x: number) => (Number.isFinite(x) ? `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)} %` : '–');

/** The markdown report: every cell, the slowdown grid, the server's overhead. */
export function markdownTable(args: {
  title: string;
  cells: readonly CellResult[];
  slowdown: readonly SlowdownCell[];
  overhead: Overhead | undefined;
  inputLengths: readonly number[];
  concurrencies: readonly number[];
}): string {
  const lines = [
    `### ${args.title}`,
    '',
    '| input | concurrency | LoRA | requests | failed | output tok/s | TTFT p50 ms | TTFT p99 ms | ITL p50 ms | ITL p99 ms |',
    '| ----: | ----------: | :--- | -------: | -----: | -----------: | ----------: | ----------: | ---------: | ---------: |',
    ...args.cells.map(
      (c) =>
        `| ${c.inputLength} | ${c.concurrency} | ${c.mode === 'lora' ? '8 adapters' : 'none'} | ${c.requests} | ${c.failed} | ${f1(c.tokensPerSecond)} | ${f1(c.ttftP50Ms)} | ${f1(c.ttftP99Ms)} | ${f1(c.itlP50Ms)} | ${f1(c.itlP99Ms)} |`,
    ),
    '',
    'LoRA slowdown, (LoRA / baseline) − 1 of the time per output token:',
    '',
    `| input \\ concurrency | ${args.concurrencies.join(' | ')} |`,
    `| ---: | ${args.concurrencies.map(() => '---:').join(' | ')} |`,
    ...args.inputLengths.map(
      (l) =>
        `| ${l} | ${args.concurrencies
          .map((c) => args.slowdown.find((s) => s.inputLength === l && s.concurrency === c))
          .map((s) => (s ? pct(s.slowdown) : '–'))
          .join(' | ')} |`,
    ),
  ];
  const failures = args.cells.filter((c) => c.failed > 0);
  if (failures.length > 0) {
    lines.push(
      '',
      `Failed requests (not in the latencies): ${failures.map((c) => `${c.failed} at input ${c.inputLength} × ${c.concurrency} (${c.mode}): ${c.firstError}`).join('; ')}`,
    );
  }
  const o = args.overhead;
  if (o) {
    lines.push(
      '',
      `Server overhead at concurrency ${o.concurrency}, input ${o.inputLength}, with LoRA: ${f1(o.httpTokensPerSecond)} tok/s through HTTP vs ${f1(o.engineTokensPerSecond)} tok/s in-process = ${pct(o.overhead)} (goal ≤ ${pct(o.goal)}: ${o.overhead <= o.goal ? 'met' : 'NOT met'})`,
    );
  }
  return `${lines.join('\n')}\n`;
}

const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Green at no slowdown, through yellow, to red at +100 % and beyond. */
function color(slowdown: number): string {
  if (!Number.isFinite(slowdown)) return '#ddd';
  const t = Math.max(0, Math.min(1, slowdown));
  const hue = 120 * (1 - t);
  return `hsl(${hue.toFixed(0)}, 70%, ${(80 - 25 * t).toFixed(0)}%)`;
}

/** The slowdown grid as an SVG heatmap: rows input length, columns concurrency. */
export function heatmapSvg(args: {
  title: string;
  slowdown: readonly SlowdownCell[];
  inputLengths: readonly number[];
  concurrencies: readonly number[];
}): string {
  const cw = 90;
  const ch = 40;
  const left = 90;
  const top = 60;
  // Wide enough for the title and the footnote, whatever the grid's size.
  const width = Math.max(left + cw * args.concurrencies.length + 20, 620);
  const height = top + ch * args.inputLengths.length + 50;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="13">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="14" font-weight="bold">${xml(args.title)}</text>`,
    `<text x="${left + (cw * args.concurrencies.length) / 2}" y="40" text-anchor="middle">concurrency</text>`,
    `<text x="16" y="${top + (ch * args.inputLengths.length) / 2}" text-anchor="middle" transform="rotate(-90 16 ${top + (ch * args.inputLengths.length) / 2})">input tokens</text>`,
  ];
  args.concurrencies.forEach((c, j) => {
    parts.push(`<text x="${left + j * cw + cw / 2}" y="${top - 4}" text-anchor="middle">${c}</text>`);
  });
  args.inputLengths.forEach((l, i) => {
    const y = top + i * ch;
    parts.push(`<text x="${left - 8}" y="${y + ch / 2 + 4}" text-anchor="end">${l}</text>`);
    args.concurrencies.forEach((c, j) => {
      const s = args.slowdown.find((x) => x.inputLength === l && x.concurrency === c);
      const v = s?.slowdown ?? Number.NaN;
      const x = left + j * cw;
      parts.push(`<rect x="${x}" y="${y}" width="${cw}" height="${ch}" fill="${color(v)}" stroke="white"/>`);
      parts.push(`<text x="${x + cw / 2}" y="${y + ch / 2 + 4}" text-anchor="middle">${xml(pct(v))}</text>`);
    });
  });
  parts.push(
    `<text x="${left}" y="${height - 16}" font-size="11">LoRA slowdown = (LoRA / baseline) − 1 of the time per output token; every request its own adapter of 8</text>`,
    '</svg>',
  );
  return `${parts.join('\n')}\n`;
}
