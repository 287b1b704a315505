import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from './checkpoint.js';
import { buildCheckpoint, type CheckpointSpec, writeCheckpoint } from './fixtures.js';
import { modelFloat32Bytes } from './modules.js';
import type { FileSource } from './source.js';
import { dirSource } from './sources/dir.js';
import { referenceRuntime } from './test-support.js';

// Full garbage collections before each sample, so that a sample counts live memory only. Two: V8
// may sweep array buffers concurrently after a collection, and finishes that before the next one.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const live = () => {
  gc();
  gc();
  return process.memoryUsage().arrayBuffers;
};

/** ~21 MB as float32: big enough that a second copy of the model or of a file shows. */
const SPEC = {
  architecture: 'LlamaForCausalLM',
  hiddenSize: 256,
  intermediateSize: 512,
  numHiddenLayers: 4,
  numAttentionHeads: 8,
  numKeyValueHeads: 2,
  vocabSize: 6144,
} as const satisfies CheckpointSpec;

/** Writes the checkpoint; in its own function so that none of its buffers outlive it in the test's frame. */
async function prepare(path: string, spec: CheckpointSpec): Promise<{ largest: number; modelBytes: number }> {
  const { files, config } = buildCheckpoint(spec);
  await writeCheckpoint(path, files);
  return { largest: Math.max(...Object.values(files).map((f) => f.byteLength)), modelBytes: modelFloat32Bytes(config) };
}

describe('loader peak memory', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lora-llama-mem-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it.each([
    ['3 F32 shards', 'whole files', { shards: 3 }],
    ['one BF16 file', 'whole files', { dtype: 'BF16' }],
    ['one F32 file', 'reads at offsets', {}],
    ['one BF16 file', 'reads at offsets', { dtype: 'BF16' }],
  ] as const)(
    '%s, %s: peak ≤ float32 model + largest file + 10 %% (reads at offsets: + 4 MB of scratch, no file), and only the model stays',
    async (label, how, options) => {
      const path = join(dir, `${label}-${how}`.replace(/\W+/g, '-'));
      const { largest, modelBytes } = await prepare(path, { ...SPEC, ...options });
      const runtime = await referenceRuntime(1);
      const tensorsBefore = tf.memory().numTensors;
      const baseline = live();
      let peak = 0;
      const sample = () => {
        peak = Math.max(peak, live() - baseline);
      };
      // Samples on every read (before and after the bytes arrive) and every progress report,
      // including the one after each file's conversion, while that file is still in hand.
      // Reads at offsets report progress per piece read.
      const dirFiles = dirSource(path);
      const source: FileSource = {
        description: dirFiles.description,
        async read(name, o) {
          sample();
          const bytes = await dirFiles.read(name, o);
          sample();
          return bytes;
        },
        ...(how === 'reads at offsets' ? { open: dirFiles.open } : {}),
      };
      const { model } = await loadModel(source, { runtime, onProgress: sample });
      const after = live() - baseline;
      sample();
      const budget = modelBytes * 1.1 + (how === 'reads at offsets' ? 4 * 2 ** 20 : largest);
      console.log(
        `${label}, ${how}: model ${(modelBytes / 1e6).toFixed(1)} MB as float32, largest file ${(largest / 1e6).toFixed(1)} MB; peak ${(peak / 1e6).toFixed(1)} MB (budget ${(budget / 1e6).toFixed(1)} MB), held after loading ${(after / 1e6).toFixed(1)} MB`,
      );
      expect(peak).toBeLessThanOrEqual(budget);
      // After loading only the model's tensors (and small LoRA stacks) remain: no file, no second copy.
      expect(after).toBeLessThanOrEqual(modelBytes * 1.05);
      expect(after).toBeGreaterThanOrEqual(modelBytes * 0.95);
      model.dispose();
      runtime.dispose();
      expect(tf.memory().numTensors).toBe(tensorsBefore);
      expect(live() - baseline).toBeLessThan(modelBytes * 0.05);
    },
    60_000,
  );
});
