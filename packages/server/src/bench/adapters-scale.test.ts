import { describe, expect, it } from 'vitest';
import { adaptersScaleSteps, adaptersScaleTable, runAdaptersScaleBench, TINY_ADAPTERS_SCALE } from './adapters-scale.js';

describe('adapters-scale benchmark', () => {
  it('serves many adapters from disk through a small host cache: every tier seen, loads and evictions counted, memory within budget', async () => {
    const lines: string[] = [];
    const r = await runAdaptersScaleBench({
      ...TINY_ADAPTERS_SCALE,
      onProgress: (l) => lines.push(l),
    });
    expect(lines).toHaveLength(adaptersScaleSteps(TINY_ADAPTERS_SCALE));
    const [reference, uniform, zipf] = r.runs;
    expect(r.runs.map((x) => `${x.traffic}/${x.adapters}`)).toEqual(['uniform/2', 'uniform/24', 'zipf/24']);
    // Two adapters in two slots: after the warm-up every request finds its adapter on the device.
    expect(reference?.ttft.device.n).toBe(TINY_ADAPTERS_SCALE.requests);
    expect(reference?.loadsPerSecond).toBe(0);
    // What LoRA must cost: the running adapters' bytes, sampled while requests run (never 0 with adapters running).
    for (const run of r.runs) expect(run.loraShare).toBeGreaterThan(0);
    expect(reference?.mustRatio).toBe(1);
    // 24 adapters through a 4-adapter cache: most requests read their adapter from disk, evicting another.
    for (const run of [uniform, zipf]) {
      expect(run?.ttft.source.n).toBeGreaterThan(0);
      expect(run?.loadsPerSecond).toBeGreaterThan(0);
      expect(run?.evictionsPerSecond).toBeGreaterThan(0);
      expect(run?.peakHostBytes).toBeLessThanOrEqual(r.config.maxCpuLoraBytes);
      expect(run?.tokensPerSecond).toBeGreaterThan(0);
    }
    // Zipf traffic repeats its popular adapters: fewer reads from disk than uniform traffic.
    expect(zipf?.ttft.source.n).toBeLessThan(uniform?.ttft.source.n as number);
    // The probes: each cold one read its adapter from disk, each resident one found it in memory.
    expect([r.probe.cold.n, r.probe.resident.n]).toEqual([TINY_ADAPTERS_SCALE.probes, TINY_ADAPTERS_SCALE.probes]);
    expect(r.probe.loadMs.p50).toBeGreaterThan(0);
    expect(r.probe.adapterBytes).toBeGreaterThan(r.config.largestAdapterBytes / 2);
    expect(adaptersScaleTable(r)).toMatch(/Cold start at the reference run's load .* on disk, \d+ \/ \d+ \(3\) ms/);
    expect(adaptersScaleTable(r)).toMatch(/\| zipf over 24 \| \d+ \| \d\.\d\d× \[\d\.\d\d, \d\.\d\d\] \|/);
  }, 120_000);
});
