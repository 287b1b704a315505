import type { LoRARuntime } from '@lora/core';
import { type CausalLM, type Chunk, greedy, Sequence } from '@lora/llama';

export interface Request {
  id: number;
  /** Adapter id, or null for the base model. */
  adapter: string | null;
  prompt: Int32Array;
  maxNewTokens: number;
}

export interface Generation {
  request: Request;
  tokens: number[];
  /** Top-2 logit gap at each generated token. */
  margins: number[];
}

export interface ServeStats {
  steps: number;
  prefillMs: number;
  decodeMs: number;
  prefillTokens: number;
  decodeTokens: number;
  /** Adapter activations that needed a slot (first loads and re-activations after eviction). */
  activations: number;
}

export interface ServeOptions {
  /** Requests running at once. */
  maxRunning: number;
  /** Admit everything in one batch, ignoring maxLoras (what a naive server does; for the E_CAPACITY demo). */
  ignoreSlotLimit?: boolean;
  /** Same schedule, but every request runs on the base model (the no-LoRA baseline). */
  withoutLoRA?: boolean;
  onStep?: (info: { kind: 'prefill' | 'decode'; requests: number; finished: number; total: number }) => void;
}

/**
 * Continuous batching, vLLM style: each step either prefills newly admitted requests or decodes one
 * token for every running request. A request is admitted while the running set stays within
 * `maxRunning` and within `maxLoras` distinct adapters, so adapters are evicted and re-activated as
 * requests with other adapters come and go.
 */
export async function serve(
  model: CausalLM,
  rt: LoRARuntime,
  requests: readonly Request[],
  opts: ServeOptions,
): Promise<{ generations: Generation[]; stats: ServeStats }> {
  const waiting = [...requests];
  const running: Array<{ gen: Generation; seq: Sequence }> = [];
  const done: Generation[] = [];
  const stats: ServeStats = { steps: 0, prefillMs: 0, decodeMs: 0, prefillTokens: 0, decodeTokens: 0, activations: 0 };
  const maxLoras = rt.config.maxLoras;
  try {
    while (waiting.length > 0 || running.length > 0) {
      const admitted: Request[] = [];
      const adapters = new Set(running.map((r) => r.gen.request.adapter).filter((a) => a !== null));
      for (let i = 0; i < waiting.length && running.length + admitted.length < opts.maxRunning; ) {
        const r = waiting[i] as Request;
        const fits = r.adapter === null || adapters.has(r.adapter) || adapters.size < maxLoras || opts.ignoreSlotLimit;
        if (!fits) {
          i++;
          continue;
        }
        if (r.adapter !== null) adapters.add(r.adapter);
        admitted.push(r);
        waiting.splice(i, 1);
      }
      const kind = admitted.length > 0 ? 'prefill' : 'decode';
      let chunks: Chunk[];
      let owners: Array<{ gen: Generation; seq: Sequence }>;
      if (kind === 'prefill') {
        owners = admitted.map((request) => ({ gen: { request, tokens: [], margins: [] }, seq: new Sequence() }));
        running.push(...owners);
        chunks = owners.map((o) => ({ seq: o.seq, tokens: o.gen.request.prompt }));
      } else {
        owners = running;
        chunks = owners.map((o) => ({ seq: o.seq, tokens: Int32Array.of(o.gen.tokens.at(-1) as number) }));
      }
      const slotsBefore = rt.adapters.slots;
      const t0 = performance.now();
      rt.adapters.setBatch(
        owners.map((o) => (opts.withoutLoRA ? null : o.gen.request.adapter)),
        chunks.map((ch) => ch.tokens.length),
      );
      const { tokens: next, margins } = greedy(await model.forward(chunks), model.config.vocabSize);
      const ms = performance.now() - t0;
      stats.activations += rt.adapters.slots.filter((id, s) => id !== null && id !== slotsBefore[s]).length;
      stats.steps++;
      if (kind === 'prefill') {
        stats.prefillMs += ms;
        stats.prefillTokens += chunks.reduce((n, ch) => n + ch.tokens.length, 0);
      } else {
        stats.decodeMs += ms;
        stats.decodeTokens += chunks.length;
      }
      const stepRequests = owners.length;
      owners.forEach((o, i) => {
        o.gen.tokens.push(next[i] as number);
        o.gen.margins.push(margins[i] as number);
      });
      for (let i = running.length - 1; i >= 0; i--) {
        const r = running[i] as { gen: Generation; seq: Sequence };
        if (r.gen.tokens.length >= r.gen.request.maxNewTokens) {
          r.seq.dispose();
          done.push(r.gen);
          running.splice(i, 1);
        }
      }
      opts.onStep?.({ kind, requests: stepRequests, finished: done.length, total: requests.length });
    }
  } finally {
    for (const r of running) r.seq.dispose();
  }
  done.sort((a, b) => a.request.id - b.request.id);
  return { generations: done, stats };
}
