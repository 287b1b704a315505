import { join } from 'node:path';
import { createLoRA, type LoRAAdapter, loadPeftAdapterFromDir } from '@lora/core';
import { demoAdapters } from './adapters.js';
import { type CheckResult, checkAgainstMerged } from './check.js';
import { LlamaModel } from './model/llama.js';
import { seededWeights } from './model/weights.js';
import type { DemoOptions } from './options.js';
import { progressBar } from './progress.js';
import { seeded } from './rng.js';
import { type Request, type ServeOptions, type ServeStats, serve } from './serve.js';

export interface DemoReport {
  backend: string;
  adapters: { id: string; rank: number; modules: number }[];
  adaptersCreated: boolean;
  checks: CheckResult[];
  lora: ServeStats;
  base: ServeStats;
  /** Requests with an adapter whose tokens differ from the base model's: the adapters matter. */
  changedByLoRA: number;
  withAdapter: number;
}

/** A seeded queue: prompt lengths 4–16, adapters cycling through all of them and "none". */
export function makeRequests(n: number, adapterIds: readonly string[], vocab: number, maxNewTokens: number): Request[] {
  const next = seeded(99);
  const cycle = [...adapterIds, null];
  return Array.from({ length: n }, (_, id) => {
    const len = 4 + Math.floor(next() * 13);
    return {
      id,
      adapter: cycle[id % cycle.length] ?? null,
      prompt: Int32Array.from({ length: len }, () => Math.floor(next() * vocab)),
      maxNewTokens,
    };
  });
}

export interface DemoIO {
  /** Status lines (stderr by default). */
  log?: (line: string) => void;
  /** Progress bars on stderr (default true). */
  progress?: boolean;
}

export async function runDemo(opts: DemoOptions, io: DemoIO = {}): Promise<DemoReport> {
  const log = io.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const showProgress = io.progress ?? true;
  const c = opts.model;
  const rt = await createLoRA(opts.lora);
  try {
    log(
      `model "${c.name}": ${c.layers} layers, hidden ${c.hidden}, ${c.heads} heads / ${c.kvHeads} KV heads, intermediate ${c.intermediate}, vocab ${c.vocab}`,
    );
    log(`LoRA backend "${rt.backend.name}": maxLoras ${rt.config.maxLoras}, maxLoraRank ${rt.config.maxLoraRank}`);
    const weights = seededWeights(c);
    const model = new LlamaModel(rt, c, weights);
    try {
      const cacheDir = join(opts.cacheDir, c.name);
      const { adapters, created } = await demoAdapters(c, cacheDir);
      for (const dir of opts.userAdapters) adapters.push(await loadPeftAdapterFromDir(dir));
      log(
        `${created ? 'wrote and loaded' : 'loaded'} ${adapters.length} PEFT adapters from ${cacheDir}${opts.userAdapters.length ? ` and ${opts.userAdapters.join(', ')}` : ''}`,
      );
      for (const a of adapters) rt.adapters.register(a);
      const byId = new Map<string, LoRAAdapter>(adapters.map((a) => [a.id, a]));
      const requests = makeRequests(opts.requests, [...byId.keys()], c.vocab, opts.maxNewTokens);

      // Warm-up on the whole queue (JIT, heap growth, XNNPACK weight packing at the prefill shapes),
      // so that neither measured pass pays for it.
      serve(
        model,
        rt,
        requests.map((r) => ({ ...r, maxNewTokens: 2 })),
        { maxRunning: 8 },
      );

      const pass = (label: string, options: Omit<ServeOptions, 'onStep'>) => {
        const bar = progressBar(requests.length, label, showProgress);
        let finished = 0;
        const result = serve(model, rt, requests, {
          ...options,
          onStep: (i) => {
            for (; finished < i.finished; finished++) bar.tick(`${i.kind} ×${i.requests}`);
          },
        });
        bar.done();
        return result;
      };
      const withLoRA = pass('serving with LoRA   ', { maxRunning: 8, ignoreSlotLimit: opts.oneBatch });
      const withoutLoRA = pass('same queue, no LoRA ', { maxRunning: 8, withoutLoRA: true });
      const check = progressBar(requests.length, 'checking vs merged W', showProgress);
      const checks = await checkAgainstMerged(rt.backend.name, c, weights, byId, withLoRA.generations, () => check.tick());
      check.done();
      return {
        backend: rt.backend.name,
        adapters: adapters.map((a) => ({ id: a.id, rank: a.rank, modules: a.modules.size })),
        adaptersCreated: created,
        checks,
        lora: withLoRA.stats,
        base: withoutLoRA.stats,
        changedByLoRA: withLoRA.generations.filter(
          (g, i) => g.request.adapter !== null && g.tokens.join() !== withoutLoRA.generations[i]?.tokens.join(),
        ).length,
        withAdapter: requests.filter((r) => r.adapter !== null).length,
      };
    } finally {
      model.dispose();
    }
  } finally {
    rt.dispose();
  }
}
