import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { LOAD_MODELS, LOAD_VARIANTS, loadTargets, runLoadBench } from './load.js';
import { targetTable } from './report.js';
import { loadTable } from './report-load.js';

const leftovers = async () => (await readdir(tmpdir())).filter((f) => f.startsWith('lora-bench-load-'));

describe('checkpoint loading bench (--tiny)', () => {
  it('loads every variant on each backend, reports MB/s and peak memory against their targets, and cleans up', async () => {
    const before = await leftovers();
    const backends = [
      { label: 'cpu (engine js)', backend: 'cpu', backendOptions: { engine: 'js' } },
      { label: 'cpu (engine wasm)', backend: 'cpu', backendOptions: { engine: 'wasm' } },
    ];
    const steps: string[] = [];
    const progress = { step: (l: string) => steps.push(l) } as never;
    const results = await runLoadBench({ spec: LOAD_MODELS.tiny, backends, rounds: 2, progress });
    expect(await leftovers()).toEqual(before);
    expect(steps).toHaveLength(backends.length * LOAD_VARIANTS.length * 2);
    expect(results.map((r) => `${r.backend} / ${r.variant}`)).toEqual(
      backends.flatMap((b) => ['F32, one file', 'F32, 4 shards', 'BF16, one file', 'BF16, 4 shards'].map((v) => `${b.label} / ${v}`)),
    );
    for (const r of results) {
      expect(r.times).toHaveLength(2);
      expect(r.minMbPerSec).toBeLessThanOrEqual(r.mbPerSec);
      expect(r.mbPerSec).toBeLessThanOrEqual(r.maxMbPerSec);
      // BF16 stores half the bytes of the same float32 weights.
      expect(r.checkpointMB).toBeGreaterThan((r.variant.startsWith('BF16') ? 0.5 : 1) * r.modelMB);
      expect(r.boundMB).toBeCloseTo(1.1 * r.modelMB + r.largestFileMB, 10);
      if (r.variant.endsWith('one file')) expect(r.largestFileMB).toBeGreaterThan(r.checkpointMB * 0.99);
      else expect(r.largestFileMB).toBeLessThan(r.checkpointMB / 2);
    }
    const targets = loadTargets(results);
    expect(targets.map((t) => t.name)).toEqual([
      'checkpoint loading on cpu (engine js): slowest variant (median)',
      'checkpoint loading on cpu (engine js): peak memory / (float32 model + largest file + 10 %)',
      'checkpoint loading on cpu (engine wasm): slowest variant (median)',
    ]);
    expect(targetTable(targets)).toMatch(/\| \d+ MB\/s +\| ≥ 200 MB\/s/);
    const table = loadTable(results);
    expect(table).toMatch(/### loadModel\(dir\) on cpu \(engine js\)/);
    expect(table).toMatch(/\| BF16, 4 shards \|/);
  }, 120_000);
});
