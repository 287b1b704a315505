import '@lora/backend-webgl';
import '@lora/backend-webgpu';
import '@tensorflow/tfjs-backend-cpu';
import type { BrowserResult, BrowserTask } from './browser-task.js';
import { runGrid } from './grid.js';
import { runHeatmap } from './heatmap.js';
import { measure } from './measure.js';
import { buildGpuContenders } from './methods.js';

/**
 * The bench page: runs one task (kernel contest, grid or slowdown heatmap) on a backend that only
 * exists in browsers (webgl) or that should be measured there too (webgpu). The Node CLI opens it
 * in Chromium, follows `window.__loraProgress` and reads `window.__loraBench` when it is set.
 */
const params = new URLSearchParams(location.search);
const backend = params.get('backend') ?? 'webgl';
const task = JSON.parse(params.get('task') ?? '{}') as BrowserTask;
const status = document.getElementById('status') as HTMLElement;
const page = window as unknown as { __loraBench?: BrowserResult; __loraProgress?: (label: string) => void };

const progress = (label: string) => {
  status.textContent = label;
  page.__loraProgress?.(label);
};

async function run(): Promise<BrowserResult> {
  const out: BrowserResult = { backend };
  const spec = { id: backend, label: `${backend} (chromium)`, backend };
  try {
    if (task.kind === 'contest') {
      out.contest = [];
      for (const shape of task.shapes) {
        const c = await buildGpuContenders(shape, backend);
        try {
          const samples = await measure(c.methods, { rounds: task.rounds, budgetMs: 2000, slowMs: 2000 });
          out.contest.push({ shape, samples: Object.fromEntries(samples) });
        } finally {
          c.dispose();
        }
        progress(`${backend}: ${shape.name}`);
      }
    } else if (task.kind === 'grid') {
      out.grid = await runGrid(spec, task.shapes, { ...task, onPoint: progress });
    } else {
      out.heatmap = await runHeatmap(spec, task.preset, task.axes, { ...task, onCell: progress });
    }
  } catch (err) {
    out.error = (err as Error)?.message ?? String(err);
  }
  return out;
}

void run().then((result) => {
  status.textContent = 'done';
  page.__loraBench = result;
});
