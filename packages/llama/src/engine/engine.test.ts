import { LoRAError } from '@lora/core';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';
import { loadModel } from '../checkpoint.js';
import { buildCheckpoint, CHECKPOINT_PRESETS } from '../fixtures.js';
import type { CausalLM } from '../model.js';
import { Sequence } from '../sequence.js';
import { referenceRuntime, testAdapters } from '../test-support.js';
import { makeTestTokenizer } from '../testing/tokenizer-fixture.js';
import { collect, Engine, type GenerateRequest, QueueFullError } from './engine.js';

/** A tiny Llama on the float64 reference backend, with the test adapters registered. */
async function setup(options: { maxLoras?: number; vocabSize?: number; maxPositionEmbeddings?: number } = {}) {
  const spec = {
    ...CHECKPOINT_PRESETS['llama-untied'],
    ...(options.vocabSize ? { vocabSize: options.vocabSize } : {}),
    maxPositionEmbeddings: options.maxPositionEmbeddings ?? 128,
  };
  const checkpoint = buildCheckpoint(spec);
  const runtime = await referenceRuntime(options.maxLoras ?? 2);
  const { model } = await loadModel(checkpoint.files, { runtime });
  const adapters = testAdapters(model.config);
  for (const a of adapters) runtime.adapters.register(a);
  // A third adapter (same modules as the first, other weights) so that 3 adapters compete for 2 slots.
  const third = testAdapters(model.config)[0]!;
  runtime.adapters.register({
    ...third,
    id: 'third',
    modules: new Map([...third.modules].map(([k, m]) => [k, { ...m, scale: -m.scale }])),
  });
  return {
    model,
    runtime,
    ids: ['all-rslora', 'attn-head-bf16', 'third'],
    dispose() {
      model.dispose();
      runtime.dispose();
    },
  };
}

/** Greedy tokens of one request, by hand: model.forward on its own, one token at a time. */
async function alone(model: CausalLM, adapter: string | null, prompt: number[], steps: number, strength?: number): Promise<number[]> {
  const seq = new Sequence();
  const out: number[] = [];
  let input = Int32Array.from(prompt);
  try {
    while (out.length < steps) {
      model.runtime.adapters.setBatch([adapter], [input.length], strength === undefined ? undefined : [strength]);
      const row = await model.forward([{ seq, tokens: input }]);
      let best = 0;
      for (let v = 1; v < row.length; v++) if ((row[v] as number) > (row[best] as number)) best = v;
      out.push(best);
      input = Int32Array.of(best);
    }
  } finally {
    seq.dispose();
  }
  return out;
}

const prompts = [[5, 9, 17, 3, 44], [1, 2, 3], [100, 7, 7, 7, 7, 7, 7, 8, 21], [64], [12, 11, 10, 9, 8, 7]];

describe('Engine: continuous batching with one adapter per request', () => {
  let cleanup: (() => void) | undefined;
  afterEach(() => {
    cleanup?.();
    cleanup = undefined;
  });

  it('at temperature 0 every request in a mixed batch gets the tokens it gets alone (3 adapters, 2 slots, staggered arrivals)', async () => {
    const w = await setup();
    cleanup = w.dispose;
    const requests: GenerateRequest[] = prompts.map((prompt, i) => ({
      prompt,
      adapter: [null, ...w.ids][i % 4] as string | null,
      sampling: { temperature: 0, maxTokens: 6 + (i % 3), ignoreEos: true },
    }));
    const expected = [];
    for (const r of requests) expected.push(await alone(w.model, r.adapter ?? null, [...(r.prompt as number[])], r.sampling!.maxTokens!));
    const before = tf.memory().numTensors;
    const engine = new Engine({ model: w.model, maxNumSeqs: 3 });
    const handles = [];
    for (const [i, r] of requests.entries()) {
      handles.push(engine.add(r));
      if (i % 2 === 1) await new Promise((resolve) => setTimeout(resolve, 1)); // arrive while others run
    }
    const results = await Promise.all(handles.map((h) => h.result));
    expect(results.map((r) => r.tokenIds)).toEqual(expected);
    expect(results.every((r) => r.finishReason === 'length')).toBe(true);
    // The adapters changed the outputs (otherwise the test would prove little).
    expect(new Set(expected.map((e) => e.join())).size).toBe(expected.length);
    await engine.drain();
    expect(tf.memory().numTensors).toBe(before);
    expect(engine.stats()).toMatchObject({ waiting: 0, running: 0, kvTokens: 0 });
  });

  it('loraScale: each request its own strength in one mixed batch; 0 is the base model, -1 the negated adapter', async () => {
    const w = await setup();
    cleanup = w.dispose;
    const prompt = [5, 17, 42, 9];
    const steps = 6;
    // 'third' is 'all-rslora' with every module's scale negated: strength -1 must give its tokens.
    const cases = [
      { loraScale: 0, expected: await alone(w.model, null, prompt, steps) },
      { loraScale: -1, expected: await alone(w.model, 'third', prompt, steps) },
      { loraScale: 1, expected: await alone(w.model, 'all-rslora', prompt, steps) },
      { loraScale: 0.5, expected: await alone(w.model, 'all-rslora', prompt, steps, 0.5) },
      { loraScale: 3, expected: await alone(w.model, 'all-rslora', prompt, steps, 3) },
    ];
    expect(new Set(cases.map((c) => c.expected.join())).size, 'the strengths change the tokens').toBe(cases.length);
    const engine = new Engine({ model: w.model, maxNumSeqs: 8 });
    const handles = cases.map((c) =>
      engine.add({
        prompt,
        adapter: 'all-rslora',
        loraScale: c.loraScale,
        sampling: { temperature: 0, maxTokens: steps, ignoreEos: true },
      }),
    );
    const results = await Promise.all(handles.map((h) => h.result));
    expect(results.map((r) => r.tokenIds)).toEqual(cases.map((c) => c.expected));
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, '0.5', 1e39]) {
      expect(() => engine.add({ prompt, adapter: 'all-rslora', loraScale: bad as number })).toThrow(
        /loraScale must be a finite float32 number/,
      );
    }
    await engine.drain();
  });

  it('a prompt longer than the token budget is prefilled over several steps with the same tokens', async () => {
    const w = await setup();
    cleanup = w.dispose;
    const prompt = Array.from({ length: 23 }, (_, i) => (i * 7) % 128);
    const expected = await alone(w.model, 'all-rslora', prompt, 4);
    const engine = new Engine({ model: w.model, maxNumSeqs: 2, maxNumBatchedTokens: 8 });
    const a = engine.add({ prompt, adapter: 'all-rslora', sampling: { maxTokens: 4, ignoreEos: true } });
    const b = engine.add({ prompt: [3, 4], adapter: 'third', sampling: { maxTokens: 8, ignoreEos: true } });
    expect((await a.result).tokenIds).toEqual(expected);
    expect((await b.result).tokenIds).toEqual(await alone(w.model, 'third', [3, 4], 8));
    expect(engine.stats().steps).toBeGreaterThan(3);
  });

  it('a request whose adapter cannot get a slot waits, and everyone finishes', async () => {
    const w = await setup({ maxLoras: 1 });
    cleanup = w.dispose;
    const engine = new Engine({ model: w.model, maxNumSeqs: 4 });
    const handles = w.ids.map((adapter, i) => engine.add({ prompt: [1 + i, 2], adapter, sampling: { maxTokens: 3, ignoreEos: true } }));
    // Requests with the first adapter or none may pass the waiting ones.
    const stats = engine.stats();
    expect(stats.waiting).toBe(3);
    const results = await Promise.all(handles.map((h) => h.result));
    expect(results.map((r) => r.finishReason)).toEqual(['length', 'length', 'length']);
    for (const [i, r] of results.entries()) expect(r.tokenIds).toEqual(await alone(w.model, w.ids[i]!, [1 + i, 2], 3));
  });

  it('streams deltas, aborts a request between steps, and frees its cache', async () => {
    const w = await setup();
    cleanup = w.dispose;
    const engine = new Engine({ model: w.model });
    await engine.add({ prompt: [1], adapter: 'all-rslora', sampling: { maxTokens: 1 } }).result; // slot stacks exist from here on
    const before = tf.memory().numTensors;
    const long = engine.add({ prompt: [1, 2, 3], sampling: { maxTokens: 100, ignoreEos: true } });
    const other = engine.add({ prompt: [4, 5], adapter: 'all-rslora', sampling: { maxTokens: 5, ignoreEos: true } });
    const seen: number[] = [];
    for await (const d of long) {
      seen.push(...d.tokenIds);
      if (seen.length === 3) long.abort();
      if (d.finishReason) expect(d.finishReason).toBe('abort');
    }
    const result = await long.result;
    expect(result.finishReason).toBe('abort');
    expect(result.tokenIds.length).toBeLessThan(100);
    expect((await other.result).tokenIds.length).toBe(5);
    await engine.drain();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('samples with a seed reproducibly, whatever the batch; top_k 1 is greedy', async () => {
    const w = await setup();
    cleanup = w.dispose;
    const engine = new Engine({ model: w.model });
    const sampled = (seed: number, extra: GenerateRequest[] = []) => {
      const h = engine.add({
        prompt: [9, 8, 7],
        adapter: 'attn-head-bf16',
        sampling: { temperature: 1.5, topP: 0.9, seed, maxTokens: 12, ignoreEos: true },
      });
      for (const e of extra) engine.add(e);
      return h.result;
    };
    const a = await sampled(42);
    const b = await sampled(42, [{ prompt: [1, 2, 3, 4], sampling: { temperature: 1, maxTokens: 10, ignoreEos: true } }]);
    const c = await sampled(43);
    expect(b.tokenIds).toEqual(a.tokenIds);
    expect(c.tokenIds).not.toEqual(a.tokenIds);
    const topK = await engine.add({
      prompt: [9, 8, 7],
      adapter: 'attn-head-bf16',
      sampling: { temperature: 2, topK: 1, maxTokens: 5, ignoreEos: true },
    }).result;
    expect(topK.tokenIds).toEqual(await alone(w.model, 'attn-head-bf16', [9, 8, 7], 5));
  });

  it('text prompts, text deltas, EOS and stop strings through a tokenizer', async () => {
    const tokenizer = makeTestTokenizer();
    const w = await setup({ vocabSize: tokenizer.vocabSize });
    cleanup = w.dispose;
    const engine = new Engine({ model: w.model, tokenizer });
    const free = await engine.add({ prompt: 'Hello world', sampling: { maxTokens: 12, ignoreEos: true } }).result;
    expect(free.text).toBe(tokenizer.decode(free.tokenIds, { skipSpecialTokens: true, cleanUpTokenizationSpaces: false }));
    const deltas = await collect(engine.add({ prompt: 'Hello world', sampling: { maxTokens: 12, ignoreEos: true } }));
    expect(deltas.map((d) => d.text).join('')).toBe(free.text);
    // A stop string taken from the free run's text: the output ends right before it.
    const cut = free.text.slice(2, 5);
    if (cut.length > 0) {
      const stopped = await engine.add({ prompt: 'Hello world', sampling: { maxTokens: 12, ignoreEos: true, stop: [cut] } }).result;
      expect(stopped.finishReason).toBe('stop');
      expect(stopped.stoppedBy).toBe(cut);
      expect(stopped.text).toBe(free.text.slice(0, free.text.indexOf(cut)));
    }
    // A stop token: the first generated token ends the request and stays in tokenIds.
    const first = free.tokenIds[0]!;
    const byToken = await engine.add({ prompt: 'Hello world', sampling: { maxTokens: 12, stopTokenIds: [first] } }).result;
    expect(byToken).toMatchObject({ finishReason: 'stop', stoppedBy: first, tokenIds: [first] });
  });

  it('refuses bad requests with a LoRAError naming the problem, before anything runs', async () => {
    const w = await setup({ maxPositionEmbeddings: 16 });
    cleanup = w.dispose;
    const engine = new Engine({ model: w.model, maxQueue: 1 });
    const cases: Array<[GenerateRequest, RegExp]> = [
      [{ prompt: [1], adapter: 'ghost' }, /E_NOT_FOUND.*"ghost" is not registered/],
      [{ prompt: [] }, /E_CONFIG.*prompt is empty/],
      [{ prompt: [1, 999] }, /E_INDEX.*prompt\[1\] is 999/],
      [{ prompt: 'text' }, /E_CONFIG.*needs a tokenizer/],
      [{ prompt: Array(16).fill(1) }, /E_CAPACITY.*16 tokens.*context is 16/],
      [{ prompt: [1, 2], sampling: { maxTokens: 15 } }, /E_CAPACITY.*asks for 17/],
      [{ prompt: [1], sampling: { temperature: -1 } }, /E_CONFIG.*temperature must be a finite number ≥ 0, got -1/],
      [{ prompt: [1], sampling: { topP: 0 } }, /E_CONFIG.*topP/],
      [{ prompt: [1], sampling: { stop: ['x'] } }, /E_CONFIG.*stop needs a tokenizer/],
    ];
    for (const [request, message] of cases) expect(() => engine.add(request)).toThrow(message);
    const first = engine.add({ prompt: [1], sampling: { maxTokens: 2 } });
    expect(() => engine.add({ prompt: [2] })).toThrow(/E_CAPACITY.*maxQueue = 1/);
    await first.result;
    await engine.close();
    expect(() => engine.add({ prompt: [1] })).toThrow(/E_DISPOSED/);
  });

  it('withoutLoRA: the same schedule as with adapters (same steps), the tokens of the base model', async () => {
    const w = await setup({ maxLoras: 1 });
    cleanup = w.dispose;
    const requests = w.ids.map((adapter, i) => ({ prompt: [5 + i, 6], adapter, sampling: { maxTokens: 3, ignoreEos: true } }));
    const run = async (withoutLoRA: boolean) => {
      const engine = new Engine({ model: w.model, withoutLoRA });
      const results = await Promise.all(requests.map((r) => engine.add(r).result));
      return { steps: engine.stats().steps, tokens: results.map((r) => r.tokenIds) };
    };
    const lora = await run(false);
    const base = await run(true);
    expect(base.steps).toBe(lora.steps); // 3 adapters through 1 slot: both wait the same way
    for (const [i, r] of requests.entries()) expect(base.tokens[i]).toEqual(await alone(w.model, null, r.prompt, 3));
  });

  it('waits without spinning while pinned adapters hold every slot, and runs once one is unpinned; idle releases the batch', async () => {
    const w = await setup({ maxLoras: 1 });
    cleanup = w.dispose;
    w.runtime.adapters.pin('all-rslora');
    const engine = new Engine({ model: w.model });
    const blocked = engine.add({ prompt: [1, 2], adapter: 'third', sampling: { maxTokens: 2, ignoreEos: true } });
    const cpu0 = process.cpuUsage();
    await new Promise((resolve) => setTimeout(resolve, 300));
    const busyMs = (process.cpuUsage(cpu0).user + process.cpuUsage(cpu0).system) / 1000;
    expect(busyMs).toBeLessThan(150); // a spinning loop would burn ~300 ms of CPU here
    expect(engine.stats()).toMatchObject({ waiting: 1, running: 0, steps: 0 });
    w.runtime.adapters.unpin('all-rslora');
    expect((await blocked.result).tokenIds).toHaveLength(2);
    await engine.drain();
    // The engine is idle: the last batch's adapter can be removed.
    expect(() => w.runtime.adapters.remove('third')).not.toThrow();
  });

  it('a full queue throws QueueFullError (E_CAPACITY), distinct from a prompt too long for the context', async () => {
    const w = await setup({ maxPositionEmbeddings: 16 });
    cleanup = w.dispose;
    const engine = new Engine({ model: w.model, maxQueue: 1 });
    const first = engine.add({ prompt: [1], sampling: { maxTokens: 1 } });
    const full = (() => {
      try {
        engine.add({ prompt: [2] });
      } catch (err) {
        return err;
      }
    })();
    expect(full).toBeInstanceOf(QueueFullError);
    expect((full as QueueFullError).code).toBe('E_CAPACITY');
    await first.result;
    const long = (() => {
      try {
        engine.add({ prompt: Array(16).fill(1) });
      } catch (err) {
        return err;
      }
    })();
    expect(long).not.toBeInstanceOf(QueueFullError);
  });

  it('a request whose adapter is removed while it waits ends with an error; the others are served', async () => {
    const w = await setup({ maxLoras: 1 });
    cleanup = w.dispose;
    const engine = new Engine({ model: w.model });
    const a = engine.add({ prompt: [1, 2], adapter: 'all-rslora', sampling: { maxTokens: 4, ignoreEos: true } });
    const b = engine.add({ prompt: [3], adapter: 'third', sampling: { maxTokens: 2, ignoreEos: true } });
    w.runtime.adapters.remove('third');
    const [ra, rb] = await Promise.all([a.result, b.result]);
    expect(ra.finishReason).toBe('length');
    expect(rb.finishReason).toBe('error');
    expect(rb.error?.message).toMatch(/E_NOT_FOUND.*"third" was removed/);
  });

  /** The model with its forward replaced on the given calls (1-based) by a throw of `fault()`. */
  const failingOn = (model: CausalLM, calls: readonly number[], fault: () => unknown): CausalLM => {
    let n = 0;
    const forward: CausalLM['forward'] = (chunks) => (calls.includes(++n) ? Promise.reject(fault()) : model.forward(chunks));
    return new Proxy(model, { get: (target, key) => (key === 'forward' ? forward : Reflect.get(target, key, target)) });
  };

  it("a LoRAError in a step fails only that step's requests; the engine goes on", async () => {
    const w = await setup();
    cleanup = w.dispose;
    const engine = new Engine({ model: failingOn(w.model, [1], () => new LoRAError('E_SHAPE', 'checked and refused')) });
    const first = await engine.add({ prompt: [1, 2], sampling: { maxTokens: 2 } }).result;
    expect(first.finishReason).toBe('error');
    expect(first.error?.message).toMatch(/E_SHAPE.*checked and refused/);
    const later = await engine.add({ prompt: [1, 2], sampling: { maxTokens: 2, ignoreEos: true } }).result;
    expect(later.finishReason).toBe('length');
    expect(engine.error).toBeUndefined();
  });

  it('any other failure in a step stops the engine (vLLM EngineDeadError): every request fails, add throws, onFailure once', async () => {
    const w = await setup();
    cleanup = w.dispose;
    await new Engine({ model: w.model }).add({ prompt: [1], sampling: { maxTokens: 1 } }).result; // device slots made
    const before = tf.memory().numTensors;
    const failures: LoRAError[] = [];
    const engine = new Engine({
      model: failingOn(w.model, [3, 4], () => new Error('Aborted()')),
      maxNumSeqs: 1,
      onFailure: (e) => failures.push(e),
    });
    const running = engine.add({ prompt: [1, 2], sampling: { maxTokens: 8, ignoreEos: true } });
    const waiting = engine.add({ prompt: [3], adapter: 'third', sampling: { maxTokens: 2, ignoreEos: true } });
    const [r, q] = await Promise.all([running.result, waiting.result]);
    for (const res of [r, q]) {
      expect(res.finishReason).toBe('error');
      expect(res.error?.code).toBe('E_BACKEND');
      expect(res.error?.message).toMatch(/engine stopped after a backend failure in step 3: "?Aborted\(\)"?; restart it/);
    }
    expect(r.tokenIds).toHaveLength(2);
    expect(q.tokenIds).toHaveLength(0);
    expect(engine.error).toBe(r.error);
    expect(failures).toEqual([r.error]);
    expect(() => engine.add({ prompt: [1] })).toThrow(r.error);
    await engine.drain();
    expect(engine.stats()).toMatchObject({ waiting: 0, running: 0, steps: 2 });
    expect(tf.memory().numTensors).toBe(before);
  });
});
