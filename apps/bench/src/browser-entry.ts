import '@lora/backend-webgl';
import '@lora/backend-webgpu';
import '@tensorflow/tfjs-backend-cpu';
import { measure, type Sample } from './measure.js';
import { buildGpuContenders, type KernelShape } from './methods.js';

/**
 * The kernel contest in a browser page, for backends that only exist there (webgl) or that should
 * be measured there too (webgpu). The Node CLI opens this page in Chromium and reads
 * `window.__loraBench` when it is set.
 */
export interface BrowserContest {
  backend: string;
  shapes: Array<{ shape: KernelShape; samples: Record<string, Sample> }>;
  error?: string;
}

const params = new URLSearchParams(location.search);
const backend = params.get('backend') ?? 'webgl';
const shapes = JSON.parse(params.get('shapes') ?? '[]') as KernelShape[];
const rounds = Number(params.get('rounds') ?? 3);
const status = document.getElementById('status') as HTMLElement;

async function run(): Promise<BrowserContest> {
  const out: BrowserContest = { backend, shapes: [] };
  try {
    for (const shape of shapes) {
      status.textContent = `${backend}: ${shape.name}`;
      const c = await buildGpuContenders(shape, backend);
      try {
        const samples = await measure(c.methods, { rounds, budgetMs: 2000, slowMs: 2000 });
        out.shapes.push({ shape, samples: Object.fromEntries(samples) });
      } finally {
        c.dispose();
      }
    }
  } catch (err) {
    out.error = (err as Error)?.message ?? String(err);
  }
  return out;
}

void run().then((result) => {
  status.textContent = 'done';
  (window as unknown as { __loraBench: BrowserContest }).__loraBench = result;
});
