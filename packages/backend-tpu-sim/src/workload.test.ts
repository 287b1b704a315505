import { describe, expect, it } from 'vitest';
import { MEASURED, mlperfRow, range } from './calibration.js';
import { CHIPS } from './chips.js';
import type { LlamaShape } from './estimate.js';
import { LLAMA_3_1_8B } from './estimate.js';
import { estimateStep, kvBytesPerToken, type LoRASetup, weightBytesPerChip } from './step.js';
import { genaiPerfThroughput, kvCapacityTokens, mlperfOfflineStep } from './workload.js';

const v6e = CHIPS.v6e;
const allOn: LoRASetup = { options: { preset: 'all-on' }, maxLoras: 1, rank: 16, logits: false, embedding: true };

describe('workloads scheduled like the V1 scheduler', () => {
  it('KV capacity: gpu_memory_utilization of HBM minus the weights, over the KV bytes per token', () => {
    const serving = { maxNumSeqs: 256, maxNumBatchedTokens: 2048, gpuMemoryUtilization: 0.9 };
    const expected = Math.floor((0.9 * 32e9 - weightBytesPerChip(LLAMA_3_1_8B)) / kvBytesPerToken(LLAMA_3_1_8B));
    expect(kvCapacityTokens(LLAMA_3_1_8B, v6e, serving)).toBe(expected);
    // Llama-3.1-8B: 128 KiB of KV per token (2 · 2 bytes · 1024 · 32 layers).
    expect(kvBytesPerToken(LLAMA_3_1_8B)).toBe(131072);
  });

  it('MLPerf offline steady state: decoders and prompt tokens in flow balance within max_num_seqs and the budget', () => {
    const big: LlamaShape = { ...LLAMA_3_1_8B, name: 'roomy' };
    const serving = { maxNumSeqs: 10, maxNumBatchedTokens: 2048, gpuMemoryUtilization: 0.9 };
    const s = mlperfOfflineStep(big, v6e, serving, { input: 100, output: 100 }, 2);
    // 10 running: 9 decoding (one token each) + 1 prompt of 9 tokens (9 · 100/100), slots round-robin.
    expect(s.running).toBe(10);
    expect(s.seqs.filter((q) => q.query === 1)).toHaveLength(9);
    expect(s.seqs.at(-1)).toEqual({ query: 9, context: 0, slot: 1 });
    expect(s.seqs.map((q) => q.slot).slice(0, 4)).toEqual([0, 1, 0, 1]);
    expect(s.outputTokensPerStep).toBeCloseTo(9 + 9 / 100, 12);
    // Contexts of the decoders spread evenly over [input, input + output).
    expect(s.seqs[0]?.context).toBe(106);
    expect(s.seqs[8]?.context).toBe(194);
  });

  it('GenAI-Perf closed loop: one client, 16-token prompts, 4 output tokens → a prefill step and 3 decode steps a request', () => {
    const serving = { maxNumSeqs: 256, maxNumBatchedTokens: 1024, gpuMemoryUtilization: 0.9 };
    const r = genaiPerfThroughput(LLAMA_3_1_8B, v6e, serving, { input: 16, output: 4 }, 1, 1, [
      { label: 'base' },
      { label: 'lora', lora: allOn },
    ]);
    expect([r.steps, r.outputTokens]).toEqual([8, 8]);
    expect(r.meanTokens).toBeCloseTo((16 + 1 + 1 + 1) / 4, 12);
    // Throughput per variant = tokens / summed step seconds of exactly those steps.
    const steps = [
      [{ query: 16, context: 0, slot: 0 }],
      [{ query: 1, context: 16, slot: 0 }],
      [{ query: 1, context: 17, slot: 0 }],
      [{ query: 1, context: 18, slot: 0 }],
    ];
    const sum = (lora?: LoRASetup) => 2 * steps.reduce((t, seqs) => t + estimateStep(LLAMA_3_1_8B, v6e, seqs, serving, lora).seconds, 0);
    expect(r.seconds[0]).toBeCloseTo(sum(), 12);
    expect(r.seconds[1]).toBeCloseTo(sum(allOn), 12);
  });

  it('long prompts: admission stops at the KV capacity, so concurrency beyond it changes nothing', () => {
    const serving = { maxNumSeqs: 256, maxNumBatchedTokens: 1024, gpuMemoryUtilization: 0.9 };
    const cap = kvCapacityTokens(LLAMA_3_1_8B, v6e, serving);
    const r = genaiPerfThroughput(LLAMA_3_1_8B, v6e, serving, { input: 8192, output: 8 }, 64, 1, [{ label: 'base' }], undefined, 1);
    expect(r.maxRunning).toBeLessThanOrEqual(Math.floor(cap / 8192) + 1);
    expect(r.maxRunning).toBeGreaterThan(1);
  });
});

describe('calibration rows', () => {
  it('the MLPerf row reports the measured change and the bracket: LoRA on the measured base step is milder than the pure model', () => {
    const r = mlperfRow('8b');
    expect(r.measured).toBeCloseTo(MEASURED.mlperf['8b'].lora / MEASURED.mlperf['8b'].base - 1, 12);
    const [allOnChange, einsum, allOff] = r.modelled as [number, number, number];
    expect(allOff).toBeLessThan(allOnChange); // the first kernel is the slowest
    expect(einsum).toBeGreaterThan(allOnChange); // the einsum is the cheapest at one adapter
    expect(r.measuredBaseBracket[0]).toBeGreaterThan(allOnChange);
    expect(r.measuredBaseBracket[0]).toBeLessThan(0);
  });

  it('range() gives the heatmap ends: best (nearest 0) and worst', () => {
    const cells = [-0.1, -0.3, -0.2].map((v, i) => ({
      length: i,
      concurrency: 1,
      baseTokensPerSecond: 1,
      change: [v],
      meanTokens: 1,
      maxRunning: 1,
    }));
    expect(range(cells, 0)).toEqual([-0.1, -0.3]);
  });
});
