import { type LoRAAdapter, loadPeftAdapter } from '@lora/core';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { adapterFiles } from '../fixture-adapters.js';
import { CHECKPOINT_PRESETS } from '../fixtures.js';
import { Sequence } from '../sequence.js';
import { loadSpec, testAdapters } from '../test-support.js';
import { Engine, type GenerateRequest } from './engine.js';
import { PrefixCache } from './prefix-cache.js';

const BASE = { key: '', from: Infinity };
const ids = (n: number, first = 1) => Int32Array.from({ length: n }, (_, i) => (first + i * 7) % 120);

/** A sequence of `length` positions with distinct values, shaped like a 2-layer cache. */
function fakeSequence(length: number): Sequence {
  const seq = new Sequence();
  for (let l = 0; l < 2; l++) {
    const values = () =>
      tf.tensor3d(
        Float32Array.from({ length: 2 * length * 3 }, (_, i) => i + 1000 * l),
        [2, length, 3],
      );
    seq.kv.push({ k: values(), v: values() });
  }
  seq.length = length;
  return seq;
}

describe('PrefixCache: whole blocks, exact keys, one namespace per adapter context', () => {
  it('restores the longest cached run of whole blocks, leaving the last prompt token to compute', async () => {
    const cache = new PrefixCache(1024, 16);
    const prompt = ids(40);
    const stored = fakeSequence(40);
    cache.store(prompt, BASE, stored);
    expect(cache.counters.tokens).toBe(32);
    const seq = new Sequence();
    expect(cache.restore(prompt, BASE, seq)).toBe(32);
    expect(seq.length).toBe(32);
    expect(seq.kv[1]?.k.shape).toEqual([2, 32, 3]);
    expect(await seq.kv[1]?.k.array()).toEqual(tf.slice(stored.kv[1]?.k as tf.Tensor3D, [0, 0, 0], [2, 32, 3]).arraySync());
    // A prompt of exactly 32 tokens may reuse only the first block: its last token must run.
    expect(cache.restore(prompt.subarray(0, 32), BASE, new Sequence())).toBe(16);
    // One changed token in the second block: the first block only.
    const changed = prompt.slice();
    changed[20] = 99;
    expect(cache.restore(changed, BASE, new Sequence())).toBe(16);
    expect(cache.counters).toMatchObject({ queries: 40 + 32 + 40, hits: 32 + 16 + 16 });
    stored.dispose();
    seq.dispose();
    cache.clear();
  });

  it('an adapter context reuses base blocks only before its start (activated LoRA), and its own blocks after', () => {
    const cache = new PrefixCache(1024, 16);
    const prompt = ids(50);
    const base = fakeSequence(50);
    cache.store(prompt, BASE, base);
    const restored = (ctx: { key: string; from: number }) => {
      const seq = new Sequence();
      const n = cache.restore(prompt, ctx, seq);
      seq.dispose();
      return n;
    };
    expect(restored({ key: 'a', from: 0 })).toBe(0); // a plain LoRA: every position differs from the base model
    expect(restored({ key: 'a', from: 20 })).toBe(16); // an activated LoRA from position 20: the block ending at 16
    expect(restored({ key: 'a', from: 32 })).toBe(32); // a block ending at its start is still base
    expect(restored({ key: 'a', from: Infinity })).toBe(48); // never invoked: the base model throughout
    const withAdapter = fakeSequence(50);
    cache.store(prompt, { key: 'a', from: 20 }, withAdapter);
    expect(restored({ key: 'a', from: 20 })).toBe(48);
    expect(restored({ key: 'a', from: 21 })).toBe(16); // another start: other values after it
    expect(restored({ key: 'b', from: 20 })).toBe(16);
    base.dispose();
    withAdapter.dispose();
    cache.clear();
  });

  it('keeps to maxTokens (least recently used first), lets a longer prompt replace the entry it covers, and frees every tensor', () => {
    const before = tf.memory().numTensors;
    const cache = new PrefixCache(64, 16);
    const [p, q, r] = [ids(33, 1), ids(33, 2), ids(33, 3)];
    for (const prompt of [p, q]) {
      const seq = fakeSequence(33);
      cache.store(prompt, BASE, seq);
      seq.dispose();
    }
    expect(cache.counters.tokens).toBe(64);
    const probe = (prompt: Int32Array) => {
      const seq = new Sequence();
      const n = cache.restore(prompt, BASE, seq);
      seq.dispose();
      return n;
    };
    probe(p); // p is now the most recently used
    const third = fakeSequence(33);
    cache.store(r, BASE, third); // evicts q
    third.dispose();
    expect(cache.counters.tokens).toBe(64);
    expect([probe(p), probe(q), probe(r)]).toEqual([32, 0, 32]);
    // p followed by 15 more tokens: 48 tokens cover p's 32, whose entry is freed (64 − 32 + 48 − 32 evicted for room).
    const longer = Int32Array.from([...p, ...ids(15, 9)]);
    const seq = fakeSequence(48);
    cache.store(longer, BASE, seq);
    seq.dispose();
    expect(cache.counters.tokens).toBeLessThanOrEqual(64);
    expect(probe(longer)).toBe(32); // 48 − 1 tokens may be reused: two blocks
    expect(probe(Int32Array.from([...longer, 5]))).toBe(48);
    // Too long for the cache: not stored.
    const huge = fakeSequence(80);
    cache.store(ids(80, 4), BASE, huge);
    huge.dispose();
    expect(probe(ids(80, 4))).toBe(0);
    cache.clear();
    expect(cache.counters.tokens).toBe(0);
    expect(tf.memory().numTensors).toBe(before);
  });
});

const INVOCATION = [11, 12];
const ALORA = {
  id: 'alora',
  rank: 4,
  alpha: 16,
  invocationTokens: INVOCATION,
  targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
};

describe('Engine enablePrefixCaching', () => {
  it('a prompt resumed from cached blocks gives the same logits, bit for bit, as its full prefill', async () => {
    const m = await loadSpec(CHECKPOINT_PRESETS['qwen2-bias'], 'out-in', 2);
    try {
      const [adapter] = testAdapters(m.model.config);
      m.runtime.adapters.register(adapter as LoRAAdapter);
      const prompt = ids(40);
      const cache = new PrefixCache(1024, 16);
      for (const id of [null, 'all-rslora']) {
        const ctx = id === null ? BASE : { key: id, from: 0 };
        const full = new Sequence();
        m.runtime.adapters.setBatch([id], [prompt.length]);
        const whole = await m.model.forward([{ seq: full, tokens: prompt }]);
        cache.store(prompt, ctx, full);
        const resumed = new Sequence();
        const n = cache.restore(prompt, ctx, resumed);
        expect(n).toBe(32);
        m.runtime.adapters.setBatch([id], [prompt.length - n]);
        const rest = await m.model.forward([{ seq: resumed, tokens: prompt.subarray(n) }]);
        expect(Array.from(rest)).toEqual(Array.from(whole));
        // And a decode step after it.
        m.runtime.adapters.setBatch([id, id], [1, 1]);
        const next = await m.model.forward([
          { seq: full, tokens: Int32Array.of(7) },
          { seq: resumed, tokens: Int32Array.of(7) },
        ]);
        const V = m.model.config.vocabSize;
        expect(Array.from(next.subarray(V))).toEqual(Array.from(next.subarray(0, V)));
        full.dispose();
        resumed.dispose();
      }
      cache.clear();
    } finally {
      m.dispose();
    }
  });

  it('serves base, LoRA and activated-LoRA requests with the tokens they get without the cache, reusing only what is the same', async () => {
    const m = await loadSpec(CHECKPOINT_PRESETS['llama-untied'], 'out-in', 2);
    try {
      const { config } = m.checkpoint;
      for (const a of testAdapters(config).slice(0, 1)) m.runtime.adapters.register(a);
      m.runtime.adapters.register(loadPeftAdapter({ id: 'alora', ...adapterFiles(config, ALORA, 6) }));
      const system = [...ids(12, 3)];
      const sampling = { temperature: 0, maxTokens: 4, ignoreEos: true };
      // In order: each is added after the one before has finished, so what it may reuse is known.
      const requests: (GenerateRequest & { cached: number })[] = [
        { prompt: system, sampling, cached: 0 },
        { prompt: system, sampling, cached: 8 }, // 11 tokens may be reused: two blocks of 4
        { prompt: [...system, 40, 41, ...INVOCATION, 50, 51], adapter: 'alora', sampling, cached: 12 }, // base blocks before the invocation (14)
        { prompt: [...system, 40, 41, ...INVOCATION, 50, 51, 52], adapter: 'alora', sampling, cached: 16 }, // its own block 12–16 too
        { prompt: system, adapter: 'all-rslora', sampling, cached: 0 }, // a plain LoRA changes every position
        { prompt: system, adapter: 'all-rslora', sampling, cached: 8 },
        { prompt: system, adapter: 'all-rslora', loraScale: 0.5, sampling, cached: 0 }, // another strength: other values
        { prompt: [...system, 60], adapter: 'alora', sampling, cached: 12 }, // never invoked: the base model's blocks
      ];
      const run = async (enablePrefixCaching: boolean) => {
        const engine = new Engine({ model: m.model, maxNumSeqs: 2, enablePrefixCaching, blockSize: 4 });
        const results = [];
        for (const { cached: _, ...r } of requests) results.push(await engine.add(r).result);
        const stats = engine.stats();
        await engine.close();
        return { results, stats };
      };
      const plain = await run(false);
      const before = tf.memory().numTensors;
      const cached = await run(true);
      expect(tf.memory().numTensors).toBe(before); // close() freed the cache
      expect(cached.results.map((r) => r.tokenIds)).toEqual(plain.results.map((r) => r.tokenIds));
      expect(cached.results.map((r) => r.cachedTokens)).toEqual(requests.map((r) => r.cached));
      expect(plain.results.every((r) => r.cachedTokens === 0)).toBe(true);
      const queried = requests.reduce((n, r) => n + (r.prompt as number[]).length, 0);
      expect(cached.stats).toMatchObject({ prefixCacheQueries: queried, prefixCacheHits: 56 });
      expect(plain.stats).toMatchObject({ prefixCacheQueries: 0, prefixCacheHits: 0, prefixCacheTokens: 0 });
    } finally {
      m.dispose();
    }
  });

  it('an adapter removed and registered again under the same id does not reuse the old adapter’s blocks', async () => {
    const m = await loadSpec(CHECKPOINT_PRESETS['llama-untied'], 'out-in', 2);
    try {
      const first = testAdapters(m.model.config)[0] as LoRAAdapter;
      m.runtime.adapters.register(first);
      const engine = new Engine({ model: m.model, enablePrefixCaching: true, blockSize: 4 });
      const request = { prompt: [...ids(9)], adapter: 'all-rslora', sampling: { temperature: 0, maxTokens: 2 } };
      expect((await engine.add(request).result).cachedTokens).toBe(0);
      expect((await engine.add(request).result).cachedTokens).toBe(8);
      await engine.drain(); // the idle engine releases the batch, so the adapter may be removed
      m.runtime.adapters.remove('all-rslora');
      // The same id, other weights (the LoRA term negated).
      m.runtime.adapters.register({ ...first, modules: new Map([...first.modules].map(([k, w]) => [k, { ...w, scale: -w.scale }])) });
      expect((await engine.add(request).result).cachedTokens).toBe(0);
      engine.resetPrefixCache();
      expect(engine.stats().prefixCacheTokens).toBe(0);
      await engine.close();
    } finally {
      m.dispose();
    }
  });

  it('refuses bad options', async () => {
    const m = await loadSpec(CHECKPOINT_PRESETS['llama-untied'], 'out-in', 2);
    try {
      expect(() => new Engine({ model: m.model, enablePrefixCaching: 'yes' as never })).toThrow(/E_CONFIG.*enablePrefixCaching/);
      expect(() => new Engine({ model: m.model, blockSize: 0 })).toThrow(/E_CONFIG.*blockSize/);
      expect(() => new Engine({ model: m.model, prefixCacheTokens: 1.5 })).toThrow(/E_CONFIG.*prefixCacheTokens/);
    } finally {
      m.dispose();
    }
  });
});
