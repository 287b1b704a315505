import '@tensorflow/tfjs-backend-cpu';
import { createLoRA, type LoRAConfig } from '@lora/core';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { demoAdapters, demoRequests, loadDemoModel, runDemoSession } from './index.js';

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
      const report = await runDemoSession({
        runtime,
        lora,
        demo,
        adapters,
        requests,
        onProgress: (phase) => phases.add(phase),
      });
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
