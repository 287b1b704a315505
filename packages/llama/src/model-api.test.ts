import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildCheckpoint, CHECKPOINT_PRESETS } from './fixtures.js';
import { greedy } from './greedy.js';
import { CausalLM, createCausalLM, LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM } from './model.js';
import { Sequence } from './sequence.js';
import { type Loaded, loadSpec, referenceRuntime, rowError, testAdapters } from './test-support.js';

const code = (c: string, message?: RegExp) => (e: unknown) =>
  (e as { code?: string }).code === c && (message === undefined || message.test((e as Error).message));

describe('CausalLM.forward', () => {
  let m: Loaded;
  let before: number;
  beforeEach(async () => {
    before = tf.memory().numTensors;
    m = await loadSpec({ ...CHECKPOINT_PRESETS['mistral-sliding-window'], maxPositionEmbeddings: 24 });
    for (const a of testAdapters(m.checkpoint.config)) m.runtime.adapters.register(a);
  });
  afterEach(() => {
    m.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  const step = (chunks: { seq: Sequence; tokens: Int32Array }[], ids: (string | null)[]) => {
    m.runtime.adapters.setBatch(
      ids,
      chunks.map((c) => c.tokens.length),
    );
    return m.model.forward(chunks);
  };

  it('decoding from the KV cache (with chunked prefill) equals recomputing the whole prefix each step', async () => {
    const V = m.checkpoint.config.vocabSize;
    const tokens = Int32Array.from({ length: 12 }, (_, i) => (i * 37 + 5) % V);
    const ids = ['all-rslora', null];
    const cached = [new Sequence(), new Sequence()];
    let worst = 0;
    try {
      // Prefill 4, a chunk of 3 on top of the cache, then one token at a time: positions, causal
      // masks of chunks that start past 0 and the window (4) all take part.
      for (const [from, to] of [
        [0, 4],
        [4, 7],
        [7, 8],
        [8, 9],
        [9, 10],
        [10, 11],
        [11, 12],
      ] as const) {
        const viaCache = await step(
          cached.map((seq) => ({ seq, tokens: tokens.slice(from, to) })),
          ids,
        );
        const fresh = [new Sequence(), new Sequence()];
        const whole = await step(
          fresh.map((seq) => ({ seq, tokens: tokens.slice(0, to) })),
          ids,
        );
        for (const s of fresh) s.dispose();
        for (let i = 0; i < 2; i++)
          worst = Math.max(worst, rowError(viaCache.subarray(i * V, (i + 1) * V), whole.subarray(i * V, (i + 1) * V)));
      }
    } finally {
      for (const s of cached) s.dispose();
    }
    expect(worst).toBeLessThan(1e-5);
  });

  it('returns the full logits of each chunk’s last token, and greedy() picks their argmax', async () => {
    const seqs = [new Sequence(), new Sequence()];
    const logits = await step(
      [
        { seq: seqs[0] as Sequence, tokens: Int32Array.of(1, 2, 3) },
        { seq: seqs[1] as Sequence, tokens: Int32Array.of(4) },
      ],
      [null, null],
    );
    const V = m.checkpoint.config.vocabSize;
    expect(logits.length).toBe(2 * V);
    const { tokens, margins } = greedy(logits, V);
    for (let i = 0; i < 2; i++) {
      const row = Array.from(logits.subarray(i * V, (i + 1) * V));
      expect(tokens[i]).toBe(row.indexOf(Math.max(...row)));
      expect(margins[i]).toBeGreaterThanOrEqual(0);
    }
    for (const s of seqs) s.dispose();
  });

  it('refuses bad steps before changing anything, each with its own code', async () => {
    const seq = new Sequence();
    const one = Int32Array.of(1);
    m.runtime.adapters.setBatch([null], [2]);
    await expect(m.model.forward([{ seq, tokens: one }])).rejects.toSatisfy(
      code('E_SHAPE', /1 chunks with 1 tokens, but the runtime's batch mapping has 1 requests with 2 tokens.*setBatch/),
    );
    await expect(step([{ seq, tokens: Int32Array.of(3, 500) }], [null])).rejects.toSatisfy(
      code('E_INDEX', /chunks\[0\]\.tokens\[1\] is 500; token ids must be in \[0, 128\)/),
    );
    await expect(step([{ seq, tokens: new Int32Array(25) }], [null])).rejects.toSatisfy(
      code('E_CAPACITY', /would reach 25 tokens.*max_position_embeddings = 24/),
    );
    await expect(
      step(
        [
          { seq, tokens: one },
          { seq, tokens: one },
        ],
        [null, null],
      ),
    ).rejects.toSatisfy(code('E_CONFIG', /chunks\[1\]: the same Sequence appears twice/));
    await expect(m.model.forward([{ seq, tokens: new Int32Array(0) }])).rejects.toSatisfy(
      code('E_SHAPE', /tokens must be a non-empty Int32Array/),
    );
    await expect(m.model.forward([])).rejects.toSatisfy(code('E_SHAPE', /non-empty array/));
    // Nothing above touched the sequence: it still works from position 0.
    expect(seq.length).toBe(0);
    await step([{ seq, tokens: Int32Array.of(1, 2) }], [null]);
    expect(seq.length).toBe(2);
    seq.dispose();
    await expect(step([{ seq, tokens: one }], [null])).rejects.toSatisfy(code('E_DISPOSED', /sequence was disposed/));
  });

  it('checks a restored cache against the model (kv and length are public for prefix caching)', async () => {
    const { numKeyValueHeads: kvh, headDim: hd, numHiddenLayers: layers } = m.checkpoint.config;
    const restored = new Sequence();
    for (let l = 0; l < layers; l++) restored.kv[l] = { k: tf.zeros([kvh, 3, hd]), v: tf.zeros([kvh, 3, hd]) };
    restored.length = 3;
    await step([{ seq: restored, tokens: Int32Array.of(7) }], [null]);
    expect(restored.length).toBe(4);
    expect(restored.kv[0]?.k.shape).toEqual([kvh, 4, hd]);
    restored.dispose();
    const wrong = new Sequence();
    for (let l = 0; l < layers; l++) wrong.kv[l] = { k: tf.zeros([kvh + 1, 3, hd]), v: tf.zeros([kvh + 1, 3, hd]) };
    wrong.length = 3;
    await expect(step([{ seq: wrong, tokens: Int32Array.of(7) }], [null])).rejects.toSatisfy(
      code('E_SHAPE', /cache does not fit this model.*expected 2 layers of K and V \[2, 3, 16\]/),
    );
    wrong.dispose();
  });

  it('a failure part way through a step discards the batch’s sequences (their caches are inconsistent)', async () => {
    const seq = new Sequence();
    await step([{ seq, tokens: Int32Array.of(1, 2) }], [null]);
    // A kernel that fails inside the step, after validation (as a lost GPU device would).
    const backend = m.runtime.backend as { expand: unknown };
    const expand = backend.expand;
    backend.expand = () => {
      throw new Error('device lost');
    };
    try {
      await expect(step([{ seq, tokens: Int32Array.of(3) }], ['all-rslora'])).rejects.toThrow(/device lost/);
    } finally {
      backend.expand = expand;
    }
    expect(seq.disposed).toBe(true);
    await expect(step([{ seq, tokens: Int32Array.of(3) }], [null])).rejects.toSatisfy(
      code('E_DISPOSED', /earlier forward failed part way \(device lost\)/),
    );
  });

  it('a disposed model or runtime refuses to run', async () => {
    const seq = new Sequence();
    m.runtime.dispose();
    await expect(m.model.forward([{ seq, tokens: Int32Array.of(1) }])).rejects.toSatisfy(code('E_DISPOSED', /runtime was disposed/));
    m.model.dispose();
    await expect(m.model.forward([{ seq, tokens: Int32Array.of(1) }])).rejects.toSatisfy(code('E_DISPOSED', /the model was disposed/));
  });
});

describe('constructing a model', () => {
  it('per-architecture classes check the config; createCausalLM picks the class', async () => {
    const rt = await referenceRuntime();
    const before = tf.memory().numTensors;
    const { config, weights } = buildCheckpoint(CHECKPOINT_PRESETS['qwen2-bias']);
    expect(() => new LlamaForCausalLM(rt, config, weights)).toThrow(
      /LlamaForCausalLM needs a config of that architecture, got "Qwen2ForCausalLM"/,
    );
    expect(() => new MistralForCausalLM(rt, config, weights)).toThrow(/E_CONFIG/);
    const model = createCausalLM(rt, config, weights);
    expect(model).toBeInstanceOf(Qwen2ForCausalLM);
    expect(model).toBeInstanceOf(CausalLM);
    expect(weights.size).toBeGreaterThan(0); // not released without the option
    expect(() => new CausalLM({} as never, config, weights)).toThrow(/E_CONFIG.*runtime must be a LoRARuntime from createLoRA, got object/);
    expect(() => new CausalLM(rt, { hiddenSize: 64 } as never, weights)).toThrow(/E_CONFIG.*config must be a ModelConfig/);
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
    rt.dispose();
  });

  it('a missing or mis-sized weight is E_SHAPE naming it, and nothing leaks', async () => {
    const rt = await referenceRuntime();
    const before = tf.memory().numTensors;
    const { config, weights } = buildCheckpoint(CHECKPOINT_PRESETS['llama-untied']);
    const missing = new Map(weights);
    missing.delete('model.layers.1.mlp.down_proj.weight');
    expect(() => new CausalLM(rt, config, missing)).toThrow(
      /E_SHAPE.*model\.layers\.1\.mlp\.down_proj\.weight \(expected shape \[64, 96\]\)/,
    );
    const short = new Map(weights).set('lm_head.weight', new Float32Array(5));
    expect(() => new CausalLM(rt, config, short)).toThrow(/lm_head\.weight has 5 values; its shape \[128, 64\] needs 8192/);
    expect(tf.memory().numTensors).toBe(before);
    // The failed models left no layer behind: a good one registers the same module names.
    const model = new CausalLM(rt, config, new Map(weights), { releaseWeights: true });
    model.dispose();
    rt.dispose();
  });

  it('releaseWeights empties the map as the model takes the tensors', async () => {
    const rt = await referenceRuntime();
    const { config, weights } = buildCheckpoint(CHECKPOINT_PRESETS['llama-tied']);
    const model = new CausalLM(rt, config, weights, { releaseWeights: true });
    expect(weights.size).toBe(0);
    model.dispose();
    rt.dispose();
  });

  it('two models on one runtime would share module names: the second is refused and leaks nothing', async () => {
    const rt = await referenceRuntime();
    const { config, weights } = buildCheckpoint(CHECKPOINT_PRESETS['llama-tied']);
    const first = new CausalLM(rt, config, weights);
    const before = tf.memory().numTensors;
    expect(() => new CausalLM(rt, config, weights)).toThrow(/E_CONFIG.*model\.embed_tokens already belong to another layer/);
    expect(tf.memory().numTensors).toBe(before);
    first.dispose();
    rt.dispose();
  });
});
