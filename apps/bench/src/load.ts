import './backends.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLoRA } from '@lora/core';
import { buildCheckpoint, type CheckpointSpec, loadModel, modelFloat32Bytes, writeCheckpoint } from '@lora/llama';
import type { Target } from './kernels.js';
import { median } from './measure.js';
import { MemoryPeak } from './memory.js';
import type { ModelBackend } from './model.js';
import type { Progress } from './progress.js';

const MB = 2 ** 20;

/** The issue's targets: checkpoint bytes per second, and peak memory within float32 model + largest file + 10 %. */
export const LOAD_TARGET_MB_PER_S = 200;

/**
 * The checkpoints loaded: a Llama of ~100 M parameters (386 MB as F32, 193 MB as BF16), and a
 * tiny one for tests. Big enough that per-file and per-tensor overheads are amortised and memory
 * shows a second copy of the model; small enough to write four variants in seconds.
 */
export const LOAD_MODELS = {
  full: {
    architecture: 'LlamaForCausalLM',
    hiddenSize: 1024,
    intermediateSize: 2816,
    numHiddenLayers: 6,
    numAttentionHeads: 16,
    numKeyValueHeads: 4,
    vocabSize: 16384,
  },
  tiny: {
    architecture: 'LlamaForCausalLM',
    hiddenSize: 64,
    intermediateSize: 172,
    numHiddenLayers: 2,
    numAttentionHeads: 4,
    numKeyValueHeads: 1,
    vocabSize: 512,
  },
} as const satisfies Record<string, CheckpointSpec>;

/** How the checkpoint is stored: dtype, and one model.safetensors or shards with an index. */
export const LOAD_VARIANTS = [
  { dtype: 'F32', shards: 1 },
  { dtype: 'F32', shards: 4 },
  { dtype: 'BF16', shards: 1 },
  { dtype: 'BF16', shards: 4 },
] as const satisfies readonly Pick<CheckpointSpec, 'dtype' | 'shards'>[];

export type LoadVariant = (typeof LOAD_VARIANTS)[number];

export interface LoadResult {
  backend: string;
  variant: string;
  /** All files of the checkpoint (config.json and index included), and the largest one. */
  checkpointMB: number;
  largestFileMB: number;
  /** The weights as float32: what the model holds. */
  modelMB: number;
  times: number[];
  /** Checkpoint MB per second: of the median time, and of the slowest and fastest rounds. */
  mbPerSec: number;
  minMbPerSec: number;
  maxMbPerSec: number;
  /** Largest rise above the pre-load baseline over all rounds (resident set, ArrayBuffer bytes). */
  peakRssMB: number;
  peakArrayBuffersMB: number;
  /** float32 model + largest file + 10 % of the model (the bound of the loader's memory test). */
  boundMB: number;
}

const variantLabel = (v: LoadVariant): string => `${v.dtype}, ${v.shards === 1 ? 'one file' : `${v.shards} shards`}`;

interface Written {
  variant: LoadVariant;
  dir: string;
  bytes: number;
  largest: number;
  modelBytes: number;
}

/** Writes one variant; in its own function so that none of its buffers outlive it. */
async function write(root: string, spec: CheckpointSpec, variant: LoadVariant): Promise<Written> {
  const dir = join(root, `${variant.dtype}-${variant.shards}`);
  const { files, config } = buildCheckpoint({ ...spec, ...variant });
  await writeCheckpoint(dir, files);
  const sizes = Object.values(files).map((f) => f.byteLength);
  return { variant, dir, bytes: sizes.reduce((a, b) => a + b, 0), largest: Math.max(...sizes), modelBytes: modelFloat32Bytes(config) };
}

/**
 * Checkpoint loading throughput: each variant written to a temp directory once (so it is read from
 * the page cache: this times the loader, not the disk), then `loadModel(dir, { runtime })` on each
 * backend, variants interleaved within each round. Memory is sampled while files are read, after
 * each file's conversion (`onProgress`) and once the model is built.
 */
export async function runLoadBench(opts: {
  spec: CheckpointSpec;
  backends: readonly ModelBackend[];
  rounds: number;
  variants?: readonly LoadVariant[];
  progress?: Progress;
}): Promise<LoadResult[]> {
  const root = await mkdtemp(join(tmpdir(), 'lora-bench-load-'));
  try {
    const written: Written[] = [];
    for (const v of opts.variants ?? LOAD_VARIANTS) written.push(await write(root, opts.spec, v));
    const results: LoadResult[] = [];
    for (const b of opts.backends) {
      const runtime = await createLoRA({ backend: b.backend, backendOptions: b.backendOptions });
      try {
        const samples = written.map(() => ({ times: [] as number[], rss: 0, arrayBuffers: 0 }));
        for (let round = 0; round < opts.rounds; round++) {
          for (const [i, w] of written.entries()) {
            const s = samples[i] as (typeof samples)[number];
            const peak = new MemoryPeak();
            const t0 = performance.now();
            const { model } = await loadModel(w.dir, { runtime, onProgress: peak.sample });
            s.times.push(performance.now() - t0);
            peak.stop();
            model.dispose();
            s.rss = Math.max(s.rss, peak.rss);
            s.arrayBuffers = Math.max(s.arrayBuffers, peak.arrayBuffers);
            opts.progress?.step(`load ${variantLabel(w.variant)} on ${b.label} ${round + 1}/${opts.rounds}`);
          }
        }
        for (const [i, w] of written.entries()) {
          const s = samples[i] as (typeof samples)[number];
          const rate = (ms: number) => w.bytes / MB / (ms / 1000);
          results.push({
            backend: b.label,
            variant: variantLabel(w.variant),
            checkpointMB: w.bytes / MB,
            largestFileMB: w.largest / MB,
            modelMB: w.modelBytes / MB,
            times: s.times,
            mbPerSec: rate(median(s.times)),
            minMbPerSec: rate(Math.max(...s.times)),
            maxMbPerSec: rate(Math.min(...s.times)),
            peakRssMB: s.rss / MB,
            peakArrayBuffersMB: s.arrayBuffers / MB,
            boundMB: (w.modelBytes * 1.1 + w.largest) / MB,
          });
        }
      } finally {
        runtime.dispose();
      }
    }
    return results;
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/** Peak memory counted against the bound: the larger of the resident-set and ArrayBuffer rises. */
export const peakMB = (r: LoadResult): number => Math.max(r.peakRssMB, r.peakArrayBuffersMB);

/**
 * Per backend: the slowest variant's median rate against ≥ 200 MB/s, and the variant closest to its
 * memory bound, where the bound applies: engine js only, since the wasm engine copies every weight
 * into its heap and keeps linear weights twice ([O, H] and the [H, O] XNNPACK reads), by design.
 */
export function loadTargets(results: readonly LoadResult[]): Target[] {
  const targets: Target[] = [];
  for (const backend of [...new Set(results.map((r) => r.backend))]) {
    const rows = results.filter((r) => r.backend === backend);
    const slowest = rows.reduce((a, b) => (b.mbPerSec < a.mbPerSec ? b : a));
    targets.push({
      name: `checkpoint loading on ${backend}: slowest variant (median)`,
      shape: slowest.variant,
      value: slowest.mbPerSec,
      goal: `≥ ${LOAD_TARGET_MB_PER_S} MB/s`,
      met: slowest.mbPerSec >= LOAD_TARGET_MB_PER_S,
      unit: 'MB/s',
    });
    if (!backend.includes('engine js')) continue;
    const tightest = rows.reduce((a, b) => (peakMB(b) / b.boundMB > peakMB(a) / a.boundMB ? b : a));
    targets.push({
      name: `checkpoint loading on ${backend}: peak memory / (float32 model + largest file + 10 %)`,
      shape: tightest.variant,
      value: peakMB(tightest) / tightest.boundMB,
      goal: '≤ 100 %',
      met: peakMB(tightest) <= tightest.boundMB,
    });
  }
  return targets;
}
