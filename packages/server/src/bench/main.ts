import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { cellsFile } from './cells-file.js';
import { QUICK_SERVE_BENCH, runServeBench } from './serve-bench.js';

const HELP = `npm run serve-bench -- [--quick] [--out DIR]

The serving benchmark through HTTP: input length {128, 512, 2048} x concurrency {1, 4, 16, 64},
32 output tokens (ignore_eos), every request with its own adapter of 8 vs no LoRA, 3 pairs per
cell in alternating order, on the demo's default-size model; tokens/s, TTFT and ITL p50/p99, the
LoRA slowdown ((LoRA / baseline) - 1; median and range of the pairs, "within noise" where the range
reaches 0) and the server's overhead against the engine in-process at concurrency 16 (goal <= 5 %).
--quick (or LORA_BENCH_QUICK=1): the tiny model, inputs {16, 64} x concurrency {1, 4}, 8 tokens.
The table goes to stdout, progress to stderr; DIR/serve.{svg,json} (default bench-results/), and
each measurement to DIR/serve-cells.jsonl as soon as it ends (the full grid runs about 75 minutes).`;

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    out: { type: 'string', default: 'bench-results' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(HELP);
} else {
  const quick = values.quick || process.env.LORA_BENCH_QUICK === '1';
  const out = resolve(values.out);
  const result = await runServeBench({
    ...(quick ? QUICK_SERVE_BENCH : {}),
    onProgress: (line) => process.stderr.write(`${line}\n`),
    onCell: cellsFile(join(out, 'serve-cells.jsonl')),
  });
  process.stdout.write(result.table);
  await mkdir(out, { recursive: true });
  await writeFile(join(out, 'serve.svg'), result.svg);
  await writeFile(join(out, 'serve.json'), `${JSON.stringify(result.json, null, 2)}\n`);
  process.stderr.write(`wrote ${join(out, 'serve.svg')} and serve.json\n`);
}
