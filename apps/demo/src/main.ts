import '@tensorflow/tfjs-backend-cpu';
import '@lora/backend-cpu';
import { relative } from 'node:path';
import { isLoRAError } from '@lora/core';
import { inherentShare } from '@lora/llama';
import { passTokensPerSecond } from '@lora/llama/demo';
import * as tf from '@tensorflow/tfjs-core';
import { writeEmbedded } from './cache.js';
import { HELP, parseOptions } from './options.js';
import { type PromptRun, runPrompts } from './prompts.js';
import { runSession, type SessionRun } from './session.js';

// tfjs prints an "install tfjs-node" banner on the cpu backend; the demo is about LoRA. (PROD, not
// IS_TEST: that one also runs tfjs' leak bookkeeping on every kernel, and its stack grows for ever.)
tf.env().set('PROD', true);

const out = (s = '') => process.stdout.write(`${s}\n`);
/** One line of text for a table cell: control characters escaped, at most `n` characters. */
const cell = (s: string, n: number) => {
  const flat = JSON.stringify(s).slice(1, -1);
  return flat.length > n ? `${flat.slice(0, n - 1)}…` : flat;
};

function printSession(r: SessionRun): boolean {
  out();
  out('req  adapter                 prompt  generated tokens                           vs merged W');
  for (const c of r.checks) {
    const g = c.result;
    const verdict = c.pass
      ? c.tieAt !== undefined
        ? `PASS (near-tie at token ${c.tieAt})`
        : 'PASS'
      : `FAIL (reference ${c.reference.join(' ')})`;
    out(
      `${g.id.replace('req-', '').padEnd(4)} ${(g.adapter ?? '(none)').padEnd(23)} ${String(g.promptIds.length).padStart(6)}  ${g.tokenIds.join(' ').padEnd(42)} ${verdict}`,
    );
  }
  const decodeTps = (s: SessionRun['lora']) => s.generatedTokens / (s.ms / 1000);

  out();
  out(
    `backend ${r.backend}: ${r.checks.filter((c) => c.pass).length}/${r.checks.length} requests PASS (tokens equal to the request run alone with W + scale·B·A)`,
  );
  out(
    `with LoRA:    ${passTokensPerSecond(r.lora).toFixed(1)} tokens/s (${r.lora.promptTokens} prompt + ${r.lora.generatedTokens} generated tokens in ${r.lora.ms.toFixed(0)} ms, ${r.lora.steps} steps; ${decodeTps(r.lora).toFixed(1)} generated tokens/s), ${r.lora.activations} adapter activations`,
  );
  out(
    `without LoRA: ${passTokensPerSecond(r.base).toFixed(1)} tokens/s (${r.base.ms.toFixed(0)} ms, ${r.base.steps} steps; ${decodeTps(r.base).toFixed(1)} generated tokens/s)`,
  );
  const must = r.mustCost;
  out(`LoRA overhead: ${overheadText(r.overhead)}; the adapters changed the output of ${r.changedByLoRA} of ${r.withAdapter} requests`);
  out(
    `LoRA must cost ${(100 * inherentShare(must)).toFixed(1)} % of a decode step of ${must.sequences} sequences at ${must.length} cached tokens (its bytes ${(100 * must.bytes).toFixed(1)} %, its FLOPs ${(100 * must.flops).toFixed(1)} % of the base step's)${r.overhead.median > inherentShare(must) ? ': the rest of the overhead is ours to remove' : ''}`,
  );
  return r.checks.every((c) => c.pass);
}

/** The session's overhead as a median with its spread; a spread reaching zero is noise, never a speed-up. */
function overheadText(o: SessionRun['overhead']): string {
  const pct = (v: number) => `${(100 * v).toFixed(1)} %`;
  if (o.rounds === 1)
    return `${pct(o.median)} of the time per token (one round, so it moves by several points between runs: --rounds 5 gives a median)`;
  const spread = `interquartile range ${pct(o.low)} to ${pct(o.high)} over ${o.rounds} rounds of both passes, back to back in alternating order`;
  return o.withinNoise ? `within noise (median ${pct(o.median)}; ${spread})` : `${pct(o.median)} of the time per token (median; ${spread})`;
}

function printPrompts(r: PromptRun): void {
  out();
  for (const [i, q] of r.requests.entries()) {
    out(
      `[${i}] adapter ${q.adapter ?? '(none)'} · prompt ${cell(q.prompt, 60)} (${q.promptIds.length} tokens) → ${q.generatedIds.length} tokens (${q.finishReason})`,
    );
    out(r.tokenizer ? `    ${cell(q.text, 200)}` : `    ids ${q.generatedIds.join(' ')}`);
  }
}

/** The --json document: these four fields per request, nothing else. */
function json(requests: { adapter: string | null; promptIds: readonly number[]; generatedIds: readonly number[]; text: string }[]): void {
  const doc = {
    requests: requests.map((q) => ({ adapter: q.adapter, prompt_ids: q.promptIds, generated_ids: q.generatedIds, text: q.text })),
  };
  out(JSON.stringify(doc));
}

try {
  const opts = parseOptions(process.argv.slice(2), process.env);
  const cwd = process.env.INIT_CWD ?? process.cwd();
  if (opts.help) console.log(HELP);
  else if (opts.save !== undefined) {
    const { modelDir, adapterDirs } = await writeEmbedded(opts.preset, opts.save);
    process.stderr.write(
      `wrote the "${opts.preset.name}" model to ${relative(cwd, modelDir) || '.'} and ${adapterDirs.size} PEFT adapters:\n`,
    );
    for (const [id, dir] of adapterDirs) process.stderr.write(`  ${id}=${relative(cwd, dir)}\n`);
  } else if (opts.prompts.length > 0 || opts.model !== undefined) {
    if (opts.prompts.length === 0) opts.prompts.push({ ids: [1, 2, 3] });
    const run = await runPrompts(opts);
    if (opts.json) json(run.requests);
    else printPrompts(run);
  } else {
    const report = await runSession(opts);
    if (opts.json)
      json(report.results.map((r) => ({ adapter: r.adapter, promptIds: r.promptIds, generatedIds: r.tokenIds, text: r.text })));
    else if (!printSession(report)) process.exitCode = 1;
  }
} catch (err) {
  if (!isLoRAError(err)) throw err;
  // User errors get one clear line, never a stack trace.
  console.error(err.message);
  process.exitCode = 2;
}
