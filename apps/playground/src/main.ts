import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import '@lora/backend-cpu';
import '@lora/backend-webgl';
import '@lora/backend-webgpu';
import { createLoRA, isLoRAError, type LoRAConfig } from '@lora/core';
import { demoAdaptersInMemory, LlamaModel, makeRequests, PRESETS, runSession, type SessionReport, seededWeights } from '@lora/demo/serving';
import wasmPlain from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreaded from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import { renderChart } from './chart.js';

// The bundler serves tfjs' .wasm binaries; tell tfjs where (our own kernels are embedded).
setWasmPaths({
  'tfjs-backend-wasm.wasm': wasmPlain,
  'tfjs-backend-wasm-simd.wasm': wasmSimd,
  'tfjs-backend-wasm-threaded-simd.wasm': wasmThreaded,
});

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = $('status');

function setStatus(text: string, state: 'idle' | 'running' | 'done' | 'error'): void {
  status.textContent = text;
  status.dataset.state = state;
}

function loraConfig(choice: string): LoRAConfig {
  const [backend, engine] = choice.split(':') as [string, string | undefined];
  return { backend, maxLoras: 3, maxLoraRank: 32, ...(engine ? { backendOptions: { engine } } : {}) };
}

function render(report: SessionReport, backendLabel: string): void {
  const rows = $('rows');
  rows.replaceChildren(
    ...report.checks.map((c) => {
      const tr = document.createElement('tr');
      const g = c.generation;
      const verdict = c.pass ? (c.tieAt !== undefined ? `PASS (near-tie at ${c.tieAt})` : 'PASS') : 'FAIL';
      for (const [text, cls] of [
        [String(g.request.id), ''],
        [g.request.adapter ?? '(none)', ''],
        [`${g.request.prompt.length} tokens`, ''],
        [g.tokens.join(' '), 'tokens'],
        [verdict, c.pass ? 'pass' : 'fail'],
      ] as const) {
        const td = document.createElement('td');
        td.textContent = text;
        if (cls) td.className = cls;
        tr.append(td);
      }
      return tr;
    }),
  );
  const tps = (s: SessionReport['lora']) => (s.prefillTokens + s.decodeTokens) / ((s.prefillMs + s.decodeMs) / 1000);
  $('chart').replaceChildren(
    renderChart([
      { label: 'with LoRA', value: tps(report.lora) },
      { label: 'without LoRA', value: tps(report.base) },
    ]),
  );
  const passed = report.checks.filter((c) => c.pass).length;
  $('summary').textContent =
    `${backendLabel}: ${passed}/${report.checks.length} requests PASS; LoRA overhead ${((tps(report.base) / tps(report.lora) - 1) * 100).toFixed(1)} % of the time per token; the adapters changed the output of ${report.changedByLoRA} of ${report.withAdapter} requests.`;
  $('results').hidden = false;
}

async function run(): Promise<void> {
  const choice = $<HTMLSelectElement>('backend').value;
  const preset = PRESETS[$<HTMLSelectElement>('preset').value] ?? PRESETS.tiny!;
  const count = Math.max(1, Math.min(32, Number($<HTMLInputElement>('requests').value) || 8));
  const button = $<HTMLButtonElement>('run');
  button.disabled = true;
  $('results').hidden = true;
  setStatus(`starting ${choice}…`, 'running');
  try {
    const config = loraConfig(choice);
    const rt = await createLoRA(config);
    const weights = seededWeights(preset);
    const model = new LlamaModel(rt, preset, weights);
    try {
      const adapters = demoAdaptersInMemory(preset);
      for (const a of adapters) rt.adapters.register(a);
      const requests = makeRequests(
        count,
        adapters.map((a) => a.id),
        preset.vocab,
        8,
      );
      const report = await runSession({
        rt,
        config,
        model,
        modelConfig: preset,
        weights,
        adapters,
        requests,
        onProgress: (phase, done, total) => setStatus(`${phase}: ${done}/${total}`, 'running'),
      });
      const simd = rt.backend.stats?.().simd === 1 ? ' (SIMD kernels)' : '';
      render(report, `${rt.backend.name} on tfjs ${rt.backend.tfBackend}${simd}`);
      const passed = report.checks.every((c) => c.pass);
      setStatus(`done: ${report.checks.filter((c) => c.pass).length}/${report.checks.length} PASS`, passed ? 'done' : 'error');
    } finally {
      model.dispose();
      rt.dispose();
    }
  } catch (err) {
    // LoRAErrors are the user's: one clear line. Anything else is a bug, shown as such.
    setStatus(isLoRAError(err) ? err.message : `unexpected error: ${(err as Error)?.stack ?? err}`, 'error');
  } finally {
    button.disabled = false;
  }
}

$<HTMLFormElement>('controls').addEventListener('submit', (event) => {
  event.preventDefault();
  void run();
});
