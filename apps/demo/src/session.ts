import { join } from 'node:path';
import { createLoRA, type LoRAConfig, type PeftAdapter } from '@lora/core';
import { decodeLoRAShare, type LoRAStepShare, queueDecodeStep } from '@lora/llama';
import { DEMO_MAX_NUM_SEQS, demoRequests, loadDemoModel, runDemoSession, type SessionPhase, type SessionReport } from '@lora/llama/demo';
import { cachedDemoAdapters } from './cache.js';
import { loadAdapters } from './load.js';
import type { DemoOptions } from './options.js';
import { progressBar } from './progress.js';

export interface SessionRun extends SessionReport {
  backend: string;
  adapters: { id: string; rank: number; modules: number }[];
  adaptersCreated: boolean;
  /**
   * What LoRA must cost (bytes and FLOPs over the base step's) in a decode step like the session's:
   * the first `maxNumSeqs` requests together, each at the median prompt length, on their adapters.
   */
  mustCost: LoRAStepShare & { sequences: number; length: number };
}

export interface DemoIO {
  /** Status lines (stderr by default). */
  log?: (line: string) => void;
  /** Progress bars on stderr (default true). */
  progress?: boolean;
}

/** Demo defaults: fewer slots than adapters, so adapters are evicted and re-activated. */
function sessionConfig(opts: DemoOptions): LoRAConfig {
  return { maxLoras: 3, maxLoraRank: 32, maxCpuLoras: 8, ...opts.lora };
}

/**
 * The embedded session: the preset's seeded checkpoint, the demo adapters (written under the cache
 * on first run and loaded back as PEFT directories) plus the user's, a queue served with and
 * without LoRA, every request checked against its adapter merged into W.
 */
export async function runSession(opts: DemoOptions, io: DemoIO = {}): Promise<SessionRun> {
  const log = io.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const lora = sessionConfig(opts);
  const rt = await createLoRA(lora);
  try {
    const p = opts.preset;
    log(
      `model "${p.name}": ${p.numHiddenLayers} layers, hidden ${p.hiddenSize}, ${p.numAttentionHeads} heads / ${p.numKeyValueHeads} KV heads, intermediate ${p.intermediateSize}, vocab ${p.vocabSize} (a seeded ${p.architecture} checkpoint built in memory)`,
    );
    log(
      `LoRA backend "${rt.backend.name}" on tfjs "${rt.backend.tfBackend}": maxLoras ${rt.config.maxLoras}, maxLoraRank ${rt.config.maxLoraRank}`,
    );
    const demo = await loadDemoModel(p, rt);
    try {
      const cacheDir = join(opts.cacheDir, p.name);
      const { adapters, created } = await cachedDemoAdapters(p, cacheDir);
      const user: PeftAdapter[] = await loadAdapters(opts.adapters);
      adapters.push(...user);
      log(
        `${created ? 'wrote and loaded' : 'loaded'} the model and ${adapters.length - user.length} PEFT adapters under ${cacheDir}${user.length ? ` and ${user.length} of yours` : ''}`,
      );
      for (const a of adapters) rt.adapters.register(a);
      const requests = demoRequests(
        opts.requests,
        adapters.map((a) => a.id),
        demo.config.vocabSize,
        opts.maxTokens ?? 8,
      );
      const bars = new Map<SessionPhase, ReturnType<typeof progressBar>>();
      const report = await runDemoSession({
        runtime: rt,
        lora,
        demo,
        adapters,
        requests,
        rounds: opts.rounds,
        onProgress: (phase, done, total) => {
          let bar = bars.get(phase);
          if (!bar) bars.set(phase, (bar = progressBar(total, phase.padEnd(21), (io.progress ?? true) && !opts.json)));
          bar.tick();
          if (done === total) bar.done();
        },
      });
      return {
        ...report,
        mustCost: typicalDecodeShare(demo.config, requests, adapters),
        backend: rt.backend.name,
        adapters: adapters.map((a) => ({ id: a.id, rank: a.rank, modules: a.modules.size })),
        adaptersCreated: created,
      };
    } finally {
      demo.model.dispose();
    }
  } finally {
    rt.dispose();
  }
}

function typicalDecodeShare(
  config: Parameters<typeof decodeLoRAShare>[0],
  requests: ReturnType<typeof demoRequests>,
  adapters: readonly PeftAdapter[],
): SessionRun['mustCost'] {
  const byId = new Map(adapters.map((a) => [a.id, a]));
  const step = queueDecodeStep(requests, (id) => byId.get(id), DEMO_MAX_NUM_SEQS);
  return { ...decodeLoRAShare(config, step), sequences: step.adapters.length, length: step.length };
}
