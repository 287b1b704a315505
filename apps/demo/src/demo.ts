import { join } from 'node:path';
import { createLoRA, loadPeftAdapterFromDir } from '@lora/core';
import { demoAdapters } from './adapters.js';
import type { DemoOptions } from './options.js';
import { progressBar } from './progress.js';
import { makeRequests } from './requests.js';
import { seededModel } from './seeded-model.js';
import { runSession, type SessionReport } from './session.js';

export interface DemoReport extends SessionReport {
  backend: string;
  adapters: { id: string; rank: number; modules: number }[];
  adaptersCreated: boolean;
}

export interface DemoIO {
  /** Status lines (stderr by default). */
  log?: (line: string) => void;
  /** Progress bars on stderr (default true). */
  progress?: boolean;
}

/** The Node CLI around runSession: PEFT adapter directories, progress bars, status lines. */
export async function runDemo(opts: DemoOptions, io: DemoIO = {}): Promise<DemoReport> {
  const log = io.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const c = opts.model;
  const rt = await createLoRA(opts.lora);
  try {
    log(
      `model "${c.name}": ${c.numHiddenLayers} layers, hidden ${c.hiddenSize}, ${c.numAttentionHeads} heads / ${c.numKeyValueHeads} KV heads, intermediate ${c.intermediateSize}, vocab ${c.vocabSize} (a seeded ${c.architecture} checkpoint built in memory)`,
    );
    log(
      `LoRA backend "${rt.backend.name}" on tfjs "${rt.backend.tfBackend}": maxLoras ${rt.config.maxLoras}, maxLoraRank ${rt.config.maxLoraRank}`,
    );
    const { model, weights } = await seededModel(c, rt);
    try {
      const cacheDir = join(opts.cacheDir, c.name);
      const { adapters, created } = await demoAdapters(c, cacheDir);
      for (const dir of opts.userAdapters) adapters.push(await loadPeftAdapterFromDir(dir));
      log(
        `${created ? 'wrote and loaded' : 'loaded'} ${adapters.length} PEFT adapters from ${cacheDir}${opts.userAdapters.length ? ` and ${opts.userAdapters.join(', ')}` : ''}`,
      );
      for (const a of adapters) rt.adapters.register(a);
      const requests = makeRequests(
        opts.requests,
        adapters.map((a) => a.id),
        c.vocab,
        opts.maxNewTokens,
      );
      const bars = new Map<string, ReturnType<typeof progressBar>>();
      const report = await runSession({
        rt,
        config: opts.lora,
        model,
        modelConfig: c,
        weights,
        adapters,
        requests,
        oneBatch: opts.oneBatch,
        onProgress: (phase, done, total, detail) => {
          let bar = bars.get(phase);
          if (!bar) bars.set(phase, (bar = progressBar(total, phase.padEnd(21), io.progress ?? true)));
          bar.tick(detail);
          if (done === total) bar.done();
        },
      });
      return {
        ...report,
        backend: rt.backend.name,
        adapters: adapters.map((a) => ({ id: a.id, rank: a.rank, modules: a.modules.size })),
        adaptersCreated: created,
      };
    } finally {
      model.dispose();
    }
  } finally {
    rt.dispose();
  }
}
