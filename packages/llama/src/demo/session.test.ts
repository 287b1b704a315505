import '@tensorflow/tfjs-backend-cpu';
import { createLoRA, type LoRAConfig } from '@lora/core';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { demoAdapters, demoRequests, loadDemoModel, quantile, roundSpread, runDemoSession } from './index.js';

tf.env().set('IS_TEST', true);

describe('the demo session on the embedded tiny model', () => {
  it('serves a mixed queue with eviction, every request equals its merged-weight run, adapters change outputs', async () => {
    const lora: LoRAConfig = { backend: 'reference', maxLoras: 2, maxLoraRank: 32, maxCpuLoras: 8 };
    const runtime = await createLoRA(lora);
    const demo = await loadDemoModel('tiny', runtime);
    try {
      const adapters = demoAdapters(demo.config);
      for (const a of adapters) runtime.adapters.register(a);
      const requests = demoRequests(
        10,
        adapters.map((a) => a.id),
        demo.config.vocabSize,
        4,
      );
      const phases = new Set<string>();
      const last = new Map<string, [number, number]>();
      const report = await runDemoSession({
        runtime,
        lora,
        demo,
        adapters,
        requests,
        rounds: 3,
        onProgress: (phase, done, total) => {
          phases.add(phase);
          last.set(phase, [done, total]);
        },
      });
      // Three rounds of both passes: progress counts every request of every round.
      expect(last.get('with LoRA')).toEqual([30, 30]);
      expect(last.get('without LoRA')).toEqual([30, 30]);
      expect(last.get('checking vs merged W')).toEqual([10, 10]);
      expect(report.overhead.rounds).toBe(3);
      expect(report.overhead.low).toBeLessThanOrEqual(report.overhead.median);
      expect(report.overhead.median).toBeLessThanOrEqual(report.overhead.high);
      // The reported passes are the median round's: their ratio is the median overhead.
      const tps = (s: typeof report.lora) => (s.promptTokens + s.generatedTokens) / s.ms;
      expect(tps(report.base) / tps(report.lora) - 1).toBeCloseTo(report.overhead.median, 10);
      expect(report.checks.map((c) => c.pass)).toEqual(requests.map(() => true));
      expect(report.results.map((r) => r.tokenIds.length)).toEqual(requests.map(() => 4));
      expect(report.changedByLoRA).toBeGreaterThan(0);
      expect(report.lora.activations).toBeGreaterThan(2); // 4 adapters through 2 slots: evictions
      expect(report.base.activations).toBe(0);
      expect([...phases]).toEqual(['with LoRA', 'without LoRA', 'checking vs merged W']);
    } finally {
      demo.model.dispose();
      runtime.dispose();
    }
  });
});

describe('roundSpread: per-round values as a median and an interquartile range', () => {
  it('interpolates quantiles like numpy and flags a range that reaches zero as noise', () => {
    expect(quantile([4, 1, 3, 2], 0.5)).toBe(2.5);
    expect(quantile([1, 2, 3, 4, 5], 0.25)).toBe(2);
    expect(roundSpread([0.1, 0.3, 0.2, 0.5, 0.4])).toEqual({ median: 0.3, low: 0.2, high: 0.4, rounds: 5, withinNoise: false });
    expect(roundSpread([-0.3, 0.1, 0.2, -0.1, 0.4]).withinNoise).toBe(true);
    expect(roundSpread([0.07]).median).toBe(0.07);
  });
});
