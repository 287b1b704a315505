import '@tensorflow/tfjs-backend-cpu';
import '@lora/backend-cpu';
import { isLoRAError } from '@lora/core';
import * as tf from '@tensorflow/tfjs-core';
import { type DemoReport, runDemo } from './demo.js';
import { HELP, parseOptions } from './options.js';

// tfjs prints an "install tfjs-node" banner on the cpu backend; the demo is about LoRA.
tf.env().set('IS_TEST', true);

function print(r: DemoReport): boolean {
  const out = (s = '') => process.stdout.write(`${s}\n`);
  out();
  out('req  adapter                 prompt  generated tokens                           vs merged W');
  for (const c of r.checks) {
    const g = c.generation;
    const verdict = c.pass
      ? c.tieAt !== undefined
        ? `PASS (near-tie at token ${c.tieAt})`
        : 'PASS'
      : `FAIL (reference ${c.reference.join(' ')})`;
    out(
      `${String(g.request.id).padEnd(4)} ${(g.request.adapter ?? '(none)').padEnd(23)} ${String(g.request.prompt.length).padStart(6)}  ${g.tokens.join(' ').padEnd(42)} ${verdict}`,
    );
  }
  const tps = (s: DemoReport['lora']) => (s.prefillTokens + s.decodeTokens) / ((s.prefillMs + s.decodeMs) / 1000);
  const decodeTps = (s: DemoReport['lora']) => s.decodeTokens / (s.decodeMs / 1000);
  const overhead = (tps(r.base) / tps(r.lora) - 1) * 100;
  out();
  out(
    `backend ${r.backend}: ${r.checks.filter((c) => c.pass).length}/${r.checks.length} requests PASS (tokens equal to the request run alone with W + scale·B·A)`,
  );
  out(
    `with LoRA:    ${tps(r.lora).toFixed(1)} tokens/s (prefill ${r.lora.prefillTokens} tokens in ${r.lora.prefillMs.toFixed(0)} ms, decode ${r.lora.decodeTokens} tokens in ${r.lora.decodeMs.toFixed(0)} ms = ${decodeTps(r.lora).toFixed(1)} tokens/s), ${r.lora.steps} steps, ${r.lora.activations} adapter activations`,
  );
  out(
    `without LoRA: ${tps(r.base).toFixed(1)} tokens/s (prefill ${r.base.prefillMs.toFixed(0)} ms, decode ${r.base.decodeMs.toFixed(0)} ms = ${decodeTps(r.base).toFixed(1)} tokens/s)`,
  );
  out(
    `LoRA overhead: ${overhead.toFixed(1)} % of the time per token; the adapters changed the output of ${r.changedByLoRA} of ${r.withAdapter} requests`,
  );
  return r.checks.every((c) => c.pass);
}

try {
  const opts = parseOptions(process.argv.slice(2), process.env);
  if (opts.help) {
    console.log(HELP);
  } else {
    const ok = print(await runDemo(opts));
    if (!ok) process.exitCode = 1;
  }
} catch (err) {
  if (!isLoRAError(err)) throw err;
  // User errors get one clear line, never a stack trace.
  console.error(err.message);
  process.exitCode = 2;
}
