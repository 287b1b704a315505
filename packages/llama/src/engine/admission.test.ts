import type { LoRAAdapter } from '@lora/core';
import { describe, expect, it } from 'vitest';
import { CHECKPOINT_PRESETS } from '../fixtures.js';
import { loadSpec, testAdapters } from '../test-support.js';
import { Engine, type GenerateRequest } from './engine.js';

const prompt = [5, 9, 17];
const sampling = (maxTokens: number) => ({ temperature: 0, maxTokens, ignoreEos: true });

describe('Engine admission: adapters in one slot, resident first, bounded bypass', () => {
  it('a request for a cold adapter is passed over in at most maxBypassSteps steps by a stream of requests for the running one', async () => {
    const m = await loadSpec(CHECKPOINT_PRESETS['llama-untied'], 'out-in', 1);
    try {
      const [hot, cold] = testAdapters(m.checkpoint.config) as [LoRAAdapter, LoRAAdapter];
      m.runtime.adapters.register(hot);
      m.runtime.adapters.register(cold);
      const run = async (maxBypassSteps: number) => {
        const finished: string[] = [];
        let step = 0;
        let added = 0;
        const handles: Promise<unknown>[] = [];
        const add = (r: GenerateRequest) => {
          const h = engine.add(r);
          handles.push(h.result.then((res) => finished.push(res.id)));
        };
        // One slot: `hot` runs; a new request for it arrives every step for 24 steps, each running 6 steps.
        const engine: Engine = new Engine({
          model: m.model,
          maxNumSeqs: 8,
          maxBypassSteps,
          onStep: () => {
            if (++step <= 24) add({ id: `hot-${++added}`, prompt, adapter: hot.id, sampling: sampling(6) });
          },
        });
        add({ id: 'hot-0', prompt, adapter: hot.id, sampling: sampling(6) });
        add({ id: 'cold', prompt, adapter: cold.id, sampling: sampling(2) });
        while (handles.length < 26) await new Promise((resolve) => setTimeout(resolve, 5));
        await Promise.all(handles);
        await engine.close();
        return finished.indexOf('cold');
      };
      // Unbounded in practice: the cold request waits for the whole stream.
      expect(await run(1000)).toBe(25);
      // Bounded: passed over in 3 steps, then the requests behind it wait until the slot frees.
      const position = await run(3);
      expect(position).toBeGreaterThan(0);
      expect(position).toBeLessThanOrEqual(1 + 3 + 1);
    } finally {
      m.dispose();
    }
  });

  it('prefers waiting requests whose adapters the running batch already uses', async () => {
    const m = await loadSpec(CHECKPOINT_PRESETS['llama-untied'], 'out-in', 2);
    try {
      const [a, b] = testAdapters(m.checkpoint.config) as [LoRAAdapter, LoRAAdapter];
      m.runtime.adapters.register(a);
      m.runtime.adapters.register(b);
      // Two sequences at once: while a-0 runs, one more request is admitted per free sequence.
      const engine = new Engine({ model: m.model, maxNumSeqs: 2 });
      const first = engine.add({ id: 'a-0', prompt, adapter: a.id, sampling: sampling(8) });
      await new Promise((resolve) => setTimeout(resolve, 0));
      const later = [
        engine.add({ id: 'b-1', prompt, adapter: b.id, sampling: sampling(1) }),
        engine.add({ id: 'a-2', prompt, adapter: a.id, sampling: sampling(1) }),
      ];
      const results = await Promise.all(later.map((h) => h.result));
      await first.result;
      // a-2 shares a-0's adapter: admitted ahead of b-1, which arrived first.
      const [b1, a2] = results;
      expect(a2?.timings.queuedMs).toBeLessThan(b1?.timings.queuedMs as number);
      await engine.close();
    } finally {
      m.dispose();
    }
  });
});
