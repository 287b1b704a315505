import { computeMapping } from '@lora/core/backend';
import { describe, expect, it } from 'vitest';
import { CHIPS } from './chips.js';
import type { LlamaShape } from './estimate.js';
import { LLAMA_3_1_8B, LLAMA_3_1_70B_TP8 } from './estimate.js';
import { resolveTpuSimOptions } from './options.js';
import { TpuSim } from './sim.js';
import {
  allGatherSeconds,
  allReduceSeconds,
  attentionCost,
  baseStepComponents,
  estimateStep,
  iciLinkBytesPerSecond,
  kvBytesPerToken,
  LoRAPriceCache,
  type LoRASetup,
  matmulCost,
  weightBytesPerChip,
} from './step.js';
import { defaultServingConfig, paddedRequests, paddedTokens, requestPaddings, tokenPaddings } from './vllm.js';

const v6e = CHIPS.v6e;
const tiny: LlamaShape = { name: 'tiny', hidden: 4, q: 4, kv: 2, intermediate: 6, layers: 3, vocab: 10, tp: 1 };
const lora = (preset: string, maxLoras = 1): LoRASetup => ({ options: { preset }, maxLoras, rank: 16, logits: false, embedding: false });

describe("vLLM's TPU runner paddings and defaults", () => {
  it('pads tokens to 16, 32, 64 … and requests to 8, 16 … capped at max_num_seqs', () => {
    expect(tokenPaddings(2048)).toEqual([16, 32, 64, 128, 256, 512, 1024, 2048]);
    expect(tokenPaddings(1000)).toEqual([16, 32, 64, 128, 256, 512, 1024]);
    expect([1, 16, 17, 438, 2048].map((n) => paddedTokens(n, 2048))).toEqual([16, 16, 32, 512, 2048]);
    expect(() => paddedTokens(3000, 2048)).toThrow(RangeError);
    expect([1, 8, 9, 220, 300].map((n) => paddedRequests(n, 256))).toEqual([8, 8, 16, 256, 256]);
    expect(requestPaddings(256)).toEqual([8, 16, 32, 64, 128, 256]);
    expect(requestPaddings(100)).toEqual([8, 16, 32, 64, 100]);
    expect(defaultServingConfig('v6e', 'LLM_CLASS')).toEqual({ maxNumSeqs: 256, maxNumBatchedTokens: 2048, gpuMemoryUtilization: 0.9 });
    expect(defaultServingConfig('v5e', 'OPENAI_API_SERVER').maxNumBatchedTokens).toBe(512);
  });
});

describe('whole-step model: hand-computed terms', () => {
  it('collectives: ring AllGather = ⌊X/2⌋ hops × max(1 µs, 2V/(X·W)), AllReduce twice that, none on one chip', () => {
    // v6e: 800 GB/s bidirectional over 4 ports → W = 200 GB/s per link.
    expect(iciLinkBytesPerSecond(v6e)).toBe(200e9);
    // 8 MB over 8 chips: each hop moves 2·8e6/(8·200e9) = 10 µs > 1 µs; 4 hops.
    expect(allGatherSeconds(v6e, 8e6, 8)).toBeCloseTo(4 * 10e-6, 15);
    expect(allReduceSeconds(v6e, 8e6, 8)).toBeCloseTo(8 * 10e-6, 15);
    // 1 kB: latency-bound, 4 hops of 1 µs.
    expect(allGatherSeconds(v6e, 1000, 8)).toBeCloseTo(4e-6, 15);
    expect(allReduceSeconds(v6e, 8e6, 1)).toBe(0);
    // v5e links are half as fast.
    expect(allGatherSeconds(CHIPS.v5e, 8e6, 8)).toBeCloseTo(2 * allGatherSeconds(v6e, 8e6, 8), 15);
  });

  it('attention: the KV cache of every sequence read once, new K/V written, causal FLOPs within a prefill chunk', () => {
    // kv = 2 → K and V, bf16: 8 bytes per token per layer. q = 4.
    // Decode (1 query, 5 cached): read 6 tokens (48 B) + write 1 (8 B) + q in and out 2·1·4·2 (16 B); FLOPs 4·1·(5 + 1)·4 = 96.
    // Prefill chunk (3 queries at 0): read 3 (24 B) + write 3 (24 B) + 2·3·4·2 (48 B); FLOPs 4·3·(0 + 2)·4 = 96.
    const a = attentionCost(v6e, tiny, [
      { query: 1, context: 5, slot: 0 },
      { query: 3, context: 0, slot: 0 },
    ]);
    expect(a.hbmBytes).toBe(72 + 96);
    expect(a.flops).toBe(192);
  });

  it('matmul: weights, activations in and out in bf16; MXU FLOPs padded to the tile and rows to 8', () => {
    const c = matmulCost(v6e, 'x', 5, 300, 100, 2);
    expect(c.hbmBytes).toBe(2 * 2 * (300 * 100 + 5 * 300 + 5 * 100));
    expect(c.flops).toBe(2 * 2 * 8 * 512 * 256);
    expect(c.seconds).toBe(Math.max(c.flops / v6e.peakBf16Flops, c.hbmBytes / v6e.hbmBytesPerSecond));
  });

  it('the base step of a tiny model, component by component (tokens padded to 16, logits for 8 requests)', () => {
    const seqs = [
      { query: 1, context: 5, slot: -1 },
      { query: 3, context: 0, slot: -1 },
    ];
    const b = baseStepComponents(tiny, v6e, seqs, 2048, 256);
    expect([b.tokens, b.paddedTokens, b.requests, b.paddedRequests]).toEqual([4, 16, 2, 8]);
    const by = Object.fromEntries(b.components.map((c) => [c.name, c]));
    expect(by.qkv_proj?.hbmBytes).toBe(3 * 2 * (4 * 8 + 16 * 4 + 16 * 8));
    expect(by.lm_head?.hbmBytes).toBe(2 * (4 * 10 + 8 * 4 + 8 * 10));
    expect(by['sampler (reads f32 logits)']?.hbmBytes).toBe(8 * 10 * 4);
    expect(by['attention (paged KV cache)']?.hbmBytes).toBe(3 * 168);
    expect(b.components.some((c) => c.iciBytes > 0)).toBe(false); // one chip: no collectives
    // Per-chip weights and KV bytes per token.
    expect(weightBytesPerChip(tiny)).toBe(2 * (120 * 3 + 2 * 10 * 4));
    expect(kvBytesPerToken(tiny)).toBe(2 * 2 * 2 * 3);
  });

  it('TP collectives scale with hidden size: two all-reduces per layer + embedding, of tokens × hidden bf16 each', () => {
    const seqs = Array.from({ length: 64 }, () => ({ query: 8, context: 100, slot: -1 }));
    const coll = (m: LlamaShape) => baseStepComponents(m, v6e, seqs, 2048, 256).components.filter((c) => c.name.includes('all-reduce'));
    const a = coll(LLAMA_3_1_70B_TP8);
    const b = coll({ ...LLAMA_3_1_70B_TP8, hidden: 2 * LLAMA_3_1_70B_TP8.hidden });
    const bytes = (cs: typeof a) => cs.reduce((s, c) => s + c.iciBytes, 0);
    const secs = (cs: typeof a) => cs.reduce((s, c) => s + c.seconds, 0);
    // 512 tokens × 8192 × 2 bytes, 2·80 + 1 all-reduces.
    expect(bytes(a)).toBe(512 * 8192 * 2 * (2 * 80 + 1));
    expect(bytes(b)).toBe(2 * bytes(a));
    expect(secs(b)).toBeCloseTo(2 * secs(a), 12); // bandwidth-bound: time doubles with the hidden size
    expect(coll({ ...LLAMA_3_1_70B_TP8, tp: 1 })).toHaveLength(0);
  });
});

describe('whole-step model: LoRA', () => {
  const decode = (n: number, adapters: number) => Array.from({ length: n }, (_, i) => ({ query: 1, context: 512, slot: i % adapters }));

  it('no token with an adapter: no LoRA work (punica skips the kernels); otherwise LoRA only adds time', () => {
    const serving = { maxNumBatchedTokens: 2048, maxNumSeqs: 256 };
    const none = estimateStep(
      LLAMA_3_1_8B,
      v6e,
      decode(8, 1).map((s) => ({ ...s, slot: -1 })),
      serving,
      lora('all-on'),
    );
    expect(none.lora).toEqual([]);
    const base = estimateStep(LLAMA_3_1_8B, v6e, decode(8, 1), serving);
    for (const preset of ['all-on', 'einsum', 'all-off']) {
      const s = estimateStep(LLAMA_3_1_8B, v6e, decode(8, 1), serving, lora(preset));
      expect(s.baseSeconds).toBe(base.baseSeconds);
      expect(s.loraSeconds).toBeGreaterThan(0);
    }
  });

  it('more adapters are never cheaper for the einsum (its one-hot contracts every slot)', () => {
    const serving = { maxNumBatchedTokens: 2048, maxNumSeqs: 256 };
    let last = 0;
    for (const maxLoras of [1, 2, 4, 8, 16, 32, 64]) {
      const t = estimateStep(LLAMA_3_1_8B, v6e, decode(64, Math.min(maxLoras, 4)), serving, lora('einsum', maxLoras)).loraSeconds;
      expect(t, `max_loras ${maxLoras}`).toBeGreaterThanOrEqual(last);
      last = t;
    }
  });

  it('the logits LoRA expands over the whole padded vocabulary on the sampled rows; the price cache returns the same numbers', () => {
    const serving = { maxNumBatchedTokens: 2048, maxNumSeqs: 256 };
    const without = estimateStep(LLAMA_3_1_8B, v6e, decode(16, 1), serving, lora('all-on'));
    const withLogits = estimateStep(LLAMA_3_1_8B, v6e, decode(16, 1), serving, { ...lora('all-on'), logits: true });
    expect(withLogits.lora.map((c) => c.name)).toContain('LoRA logits (shrink + expand over the vocab)');
    expect(withLogits.loraSeconds).toBeGreaterThan(without.loraSeconds);
    const cache = new LoRAPriceCache();
    const a = estimateStep(LLAMA_3_1_8B, v6e, decode(16, 1), serving, lora('all-on'), cache);
    const b = estimateStep(LLAMA_3_1_8B, v6e, decode(16, 1), serving, lora('all-on'), cache);
    expect(b).toEqual(a);
    expect(a).toEqual(without);
    expect([cache.hits, cache.misses]).toEqual([1, 1]);
  });
});

describe('block skipping', () => {
  it('skipped blocks never cost HBM bytes: a token block with no adapter and a lane group nobody uses fetch nothing', () => {
    // 256 tokens (two 128-token blocks): block 0 alternates slots 0 and 1, block 1 has no adapter (-1).
    // L = 2 → 3 slots with the zero slot; rank 16 → padded to 128, 2 lanes a group, 2 groups. H = 256: one contraction block.
    const slots = Int32Array.from({ length: 256 }, (_, t) => (t < 128 ? t % 2 : -1));
    const meta = computeMapping(slots, { maxLoras: 2, maxNumTokens: 256 });
    const run = (blockSkip: boolean) => {
      const sim = new TpuSim(resolveTpuSimOptions({ preset: 'all-on', flags: { blockSkip } }), { costOnly: true });
      sim.shrink({ x: new Float32Array(0), hidden: 256, loraA: [new Float32Array(0)], slots: 2, rank: 16, meta, scale: 1 });
      return sim.lastCall.find((op) => op.kind === 'pallas')!;
    };
    const skipping = run(true);
    // Only step (block 0, group 0) runs: idx 256·4 + its x block 128×256 + group 0's weights 256×256, all bf16;
    // the 2 × 2 output blocks 128×256 bf16 are written whether or not their step ran.
    expect(skipping.hbmBytes).toBe(256 * 4 + 128 * 256 * 2 + 256 * 256 * 2 + 4 * 128 * 256 * 2);
    expect([skipping.gridSteps, skipping.stepsSkipped]).toEqual([4, 3]);
    // Without skipping every step fetches its blocks: x once per token block, weights for every step.
    const all = run(false);
    expect(all.hbmBytes).toBe(256 * 4 + 2 * 128 * 256 * 2 + 4 * 256 * 256 * 2 + 4 * 128 * 256 * 2);
  });
});
