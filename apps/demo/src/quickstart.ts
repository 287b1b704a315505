import '@tensorflow/tfjs-backend-cpu';
import '@lora/backend-cpu';
import { isLoRAError } from '@lora/core';
import * as tf from '@tensorflow/tfjs-core';
import { runMixedBatch } from './mixed-batch.js';

// tfjs prints an "install tfjs-node" banner on the cpu backend; the demo is about LoRA. (PROD, not
// IS_TEST: that one also runs tfjs' leak bookkeeping on every kernel, and its stack grows for ever.)
tf.env().set('PROD', true);

// Swap backends by config value: --backend NAME, or LORA_BACKEND, default cpu.
const flag = process.argv.indexOf('--backend');
const backend = (flag >= 0 ? process.argv[flag + 1] : undefined) ?? process.env.LORA_BACKEND ?? 'cpu';

try {
  console.log(`lora-kernels quickstart: one packed q/k/v layer, a batch of 5 requests on 3 adapters + 1 without, backend "${backend}"\n`);
  const r = await runMixedBatch({ backend });
  console.log('request  adapter      slot  tokens  y[0, :3] of the request          max error vs merged W   check');
  r.requests.forEach((q, i) => {
    const ys = q.firstOutputs.map((v) => v.toFixed(4).padStart(8)).join(' ');
    console.log(
      `${String(i).padEnd(8)} ${(q.adapter ?? '(none)').padEnd(12)} ${String(q.slot).padStart(4)}  ${String(q.tokens).padStart(6)}  ${ys.padEnd(32)} ${q.maxError.toExponential(2).padStart(21)}   ${q.pass ? 'PASS' : 'FAIL'}`,
    );
  });
  console.log(
    `\nbackend ${r.backend}: max error ${r.maxError.toExponential(2)} (promise: ≤ 1e-4 per row); LoRA ${r.loraMs.toFixed(2)} ms, base matmul ${r.baseMs.toFixed(2)} ms`,
  );
  if (r.requests.some((q) => !q.pass)) process.exitCode = 1;
} catch (err) {
  if (!isLoRAError(err)) throw err;
  console.error(`${err.message}`);
  process.exitCode = 2;
}
