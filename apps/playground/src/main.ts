import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import '@lora/backend-cpu';
import '@lora/backend-webgl';
import '@lora/backend-webgpu';
import { createLoRA, isLoRAError, type LoRAConfig, listLoRABackends } from '@lora/core';
import { DEMO_PRESETS, demoAdapters, demoRequests, loadDemoModel, runDemoSession, type SessionReport } from '@lora/llama/demo';
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
    ...report.checks.map((c, i) => {
      const tr = document.createElement('tr');
      const r = c.result;
      const verdict = c.pass ? (c.tieAt !== undefined ? `PASS (near-tie at ${c.tieAt})` : 'PASS') : 'FAIL';
      for (const [text, cls] of [
        [String(i), ''],
        [r.adapter ?? '(none)', ''],
        [`${r.promptIds.length} tokens`, ''],
        [r.tokenIds.join(' '), 'tokens'],
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
  // Tokens the model's forwards processed, over the time of its steps: every prompt token, and every
  // generated token fed back in (all but each request's last).
  const tps = (s: SessionReport['lora']) =>
    (s.promptTokens + s.generatedTokens - report.results.length) / ((s.prefillMs + s.decodeMs) / 1000);
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
  const presetName = $<HTMLSelectElement>('preset').value;
  const preset = Object.hasOwn(DEMO_PRESETS, presetName) ? DEMO_PRESETS[presetName as keyof typeof DEMO_PRESETS] : DEMO_PRESETS.tiny;
  const count = Math.max(1, Math.min(32, Number($<HTMLInputElement>('requests').value) || 8));
  const button = $<HTMLButtonElement>('run');
  button.disabled = true;
  $('results').hidden = true;
  setStatus(`starting ${choice}…`, 'running');
  try {
    const lora = loraConfig(choice);
    const runtime = await createLoRA(lora);
    try {
      setStatus(`loading the ${preset.name} model…`, 'running');
      const demo = await loadDemoModel(preset, runtime);
      try {
        const adapters = demoAdapters(demo.config);
        for (const a of adapters) runtime.adapters.register(a);
        const requests = demoRequests(
          count,
          adapters.map((a) => a.id),
          demo.config.vocabSize,
          8,
        );
        const report = await runDemoSession({
          runtime,
          lora,
          demo,
          adapters,
          requests,
          onProgress: (phase, done, total) => setStatus(`${phase}: ${done}/${total}`, 'running'),
        });
        const simd = runtime.backend.stats?.().simd === 1 ? ' (SIMD kernels)' : '';
        render(report, `${runtime.backend.name} on tfjs ${runtime.backend.tfBackend}${simd}`);
        const passed = report.checks.every((c) => c.pass);
        setStatus(`done: ${report.checks.filter((c) => c.pass).length}/${report.checks.length} PASS`, passed ? 'done' : 'error');
      } finally {
        demo.model.dispose();
      }
    } finally {
      runtime.dispose();
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

// One option per backend the imports above registered (cpu's two engines are written in the HTML):
// a new backend appears here by importing its package, with no list to edit.
const backendSelect = $<HTMLSelectElement>('backend');
for (const name of listLoRABackends()) {
  if (Array.from(backendSelect.options).some((o) => o.value.split(':')[0] === name)) continue;
  backendSelect.add(new Option(name, name));
}

// ?backend=webgpu&preset=tiny&requests=6&run=1 selects those controls, and run=1 starts at once
// (links to a given backend, and tests that need no clicks). Unknown values leave a control as it is.
const query = new URLSearchParams(location.search);
for (const id of ['backend', 'preset', 'requests'] as const) {
  const value = query.get(id);
  const control = $<HTMLSelectElement | HTMLInputElement>(id);
  if (value === null) continue;
  if (control instanceof HTMLSelectElement && !Array.from(control.options).some((o) => o.value === value)) continue;
  control.value = value;
}
if (query.get('run') === '1') void run();
