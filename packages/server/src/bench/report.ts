/** One measured cell: an input length at a concurrency, with LoRA or without. */
export interface CellResult {
  /** Prompt length in tokens (seeded token ids, different for every request). */
  readonly inputLength: number;
  /** Clients sending at once, each sending its next request when its last one ended (vLLM benchmark_serving.py's `--max-concurrency`). */
  readonly concurrency: number;
  /** `lora`: every request names one of the benchmark's adapters, in turn; `base`: the same requests on the base model. */
  readonly mode: 'lora' | 'base';
  /** Requests that completed, every repeat together; only theirs are in the latency percentiles. */
  readonly requests: number;
  /** Requests that failed (left out of the latencies, as vLLM's benchmark_serving.py does). */
  readonly failed: number;
  /** The first failure's message, present when `failed` > 0. */
  readonly firstError?: string;
  /** How many times the cell was measured in this mode (`repeats`). */
  readonly repeats: number;
  /** Output tokens per second of wall time (vLLM's "output token throughput"), the median repeat's. */
  readonly tokensPerSecond: number;
  /** Median time to first token in ms, from sending the request (completed requests of every repeat). */
  readonly ttftP50Ms: number;
  /** 99th-percentile time to first token in ms (completed requests). */
  readonly ttftP99Ms: number;
  /** Median inter-token latency in ms, over every gap of every completed request (a chunk of k tokens counts as k equal gaps). */
  readonly itlP50Ms: number;
  /** 99th-percentile inter-token latency in ms, over the same gaps. */
  readonly itlP99Ms: number;
}

/** LoRA against no LoRA at one input length and concurrency. */
export interface SlowdownCell {
  /** Prompt length in tokens, as in {@link CellResult.inputLength}. */
  readonly inputLength: number;
  /** Clients sending at once, as in {@link CellResult.concurrency}. */
  readonly concurrency: number;
  /**
   * As the vLLM TPU multi-LoRA report computes it: (LoRA / baseline) − 1 of the time per output
   * token (= baseline tokens/s ÷ LoRA tokens/s − 1), the median over the cell's LoRA / no-LoRA pairs.
   */
  readonly slowdown: number;
  /** The 25th and 75th percentiles of the pairs' slowdowns. */
  readonly low: number;
  readonly high: number;
  /** The range reaches 0: the pairs do not tell LoRA's cost apart from noise, reported as such, never as a (negative) slowdown. */
  readonly withinNoise: boolean;
  /** The same for the median inter-token latency (median over the pairs). */
  readonly itlSlowdown: number;
}

/** What the server costs: the same LoRA requests through HTTP and with the engine in-process, best of the repetitions each. */
export interface Overhead {
  /** Clients sending at once (`overheadConcurrency`, clipped to the largest concurrency measured). */
  readonly concurrency: number;
  /** Prompt length in tokens: the first of the input lengths. */
  readonly inputLength: number;
  /** Output tokens/s through HTTP (streamed, the benchmark client). */
  readonly httpTokensPerSecond: number;
  /** Output tokens/s of the same requests with the engine in-process (`engine.add`: no HTTP, no JSON). */
  readonly engineTokensPerSecond: number;
  /** engine / http − 1: the time the HTTP layer adds per token. */
  readonly overhead: number;
  /** The largest overhead the server aims for (0.05, i.e. 5 %); the report says whether it was met. */
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
    'LoRA slowdown, (LoRA / baseline) − 1 of the time per output token: the median over the LoRA / no-LoRA pairs [25th, 75th percentile]; "within noise" where that range reaches 0:',
    '',
    `| input \\ concurrency | ${args.concurrencies.join(' | ')} |`,
    `| ---: | ${args.concurrencies.map(() => '---:').join(' | ')} |`,
    ...args.inputLengths.map(
      (l) =>
        `| ${l} | ${args.concurrencies
          .map((c) => args.slowdown.find((s) => s.inputLength === l && s.concurrency === c))
          .map((s) => (s ? slowdownText(s) : '–'))
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

/** A slowdown cell in words: the median and its range, or "within noise" with the range. */
function slowdownText(s: SlowdownCell): string {
  const range = `[${pct(s.low)}, ${pct(s.high)}]`.replaceAll(' %', '');
  return s.withinNoise ? `within noise ${range}` : `${pct(s.slowdown)} ${range}`;
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
    `<title>${xml(args.title)}</title>`,
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
      // A cell within noise is grey and says so: never a colour for a cost the pairs did not show.
      const v = s === undefined || s.withinNoise ? Number.NaN : s.slowdown;
      const x = left + j * cw;
      parts.push(`<rect x="${x}" y="${y}" width="${cw}" height="${ch}" fill="${color(v)}" stroke="white"/>`);
      parts.push(`<text x="${x + cw / 2}" y="${y + ch / 2 + 4}" text-anchor="middle">${xml(s?.withinNoise ? 'noise' : pct(v))}</text>`);
    });
  });
  parts.push(
    `<text x="${left}" y="${height - 16}" font-size="11">LoRA slowdown = (LoRA / baseline) − 1 of the time per output token, median of the pairs; every request its own adapter of 8; grey: within noise</text>`,
    '</svg>',
  );
  return `${parts.join('\n')}\n`;
}
