import { createLoRA, loadPeftAdapter, type PeftAdapter, parseSafetensors, type SerializableDType, serializeSafetensors } from '@lora/core';
import { adapterFiles, moduleSpecs } from '@lora/llama';
import { type DemoPreset, loadDemoModel } from '@lora/llama/demo';
import type * as tf from '@tensorflow/tfjs-core';
import { median } from './measure.js';
import type { Progress } from './progress.js';

export interface ActivationResult {
  modules: number;
  rank: number;
  adapterMB: number;
  /** Host copies into every layer's slot (scale folded, rank padded). */
  activateMs: number;
  /** Bringing the stacked tensors the next forward reads up to date: the activated slot written in place, or each stack made anew. */
  uploadMs: number;
}

export interface ParseResult {
  dtype: SerializableDType;
  fileMB: number;
  tensors: number;
  ms: number;
  mbPerSec: number;
  /** Tensors whose data was copied out of the file (0 = all views). */
  copiedTensors: number;
  /** Bytes allocated for decoded data, relative to the file's size. */
  allocatedVsFile: number;
}

/**
 * Activating an adapter of every module (embedding, every projection, lm_head) in the preset's model
 * (the demo's default: 4 layers, hidden 512, 8 heads / 2 KV heads, intermediate 1376, vocab 4096).
 */
export async function benchActivation(preset: DemoPreset, rounds: number, progress?: Progress): Promise<ActivationResult> {
  const rank = 16;
  const rt = await createLoRA({ backend: 'cpu', maxLoras: 4, maxLoraRank: rank, maxCpuLoras: 8 });
  const activate: number[] = [];
  const upload: number[] = [];
  let adapters: PeftAdapter[] = [];
  try {
    const { model, config } = await loadDemoModel(preset, rt);
    try {
      const targets = [...new Set(moduleSpecs(config).map((m) => m.short))];
      adapters = Array.from({ length: 5 }, (_, i) => {
        const id = `a${i}`;
        return loadPeftAdapter({ id, ...adapterFiles(config, { id, rank, alpha: 32, targets }, 11 + i) });
      });
      for (const a of adapters) rt.adapters.register(a);
      const stacks = () =>
        rt.adapters.layers.flatMap((l) => {
          const s = l as unknown as { loraA: tf.Tensor | tf.Tensor[]; loraB: tf.Tensor | tf.Tensor[] };
          return [s.loraA, s.loraB].flat();
        });
      for (let r = 0; r < rounds; r++) {
        // Five adapters through four slots: every activation evicts one.
        const a = adapters[r % adapters.length]!;
        if (rt.adapters.slotOf(a.id) >= 0) rt.adapters.deactivate(a.id);
        let t0 = performance.now();
        rt.adapters.activate(a.id);
        activate.push(performance.now() - t0);
        // What the next forward does first: bring every stack up to date (on the cpu backend the
        // copy into the tensor's memory happens here, synchronously; nothing is read back).
        t0 = performance.now();
        stacks();
        upload.push(performance.now() - t0);
        progress?.step(`adapters: activation ${r + 1}/${rounds}`);
      }
    } finally {
      model.dispose();
    }
  } finally {
    rt.dispose();
  }
  const a0 = adapters[0]!;
  const floats = [...a0.modules.values()].reduce((n, m) => n + m.a.length + m.b.length, 0);
  return { modules: a0.modules.size, rank, adapterMB: (floats * 4) / 2 ** 20, activateMs: median(activate), uploadMs: median(upload) };
}

/** A safetensors file of ~`megabytes` MB shaped like a large rank-16 adapter ([16, 4096] tensors). */
function syntheticAdapterFile(megabytes: number, dtype: SerializableDType): Uint8Array {
  const perTensor = 16 * 4096;
  const count = Math.max(1, Math.round((megabytes * 2 ** 20) / (perTensor * 4)));
  const data = new Float32Array(perTensor);
  for (let i = 0; i < perTensor; i++) data[i] = Math.sin(i) * 0.01;
  const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (let i = 0; i < count; i++) tensors[`base_model.model.model.layers.${i}.mlp.up_proj.lora_A.weight`] = { shape: [16, 4096], data };
  return serializeSafetensors(tensors, { format: 'pt' }, dtype);
}

export function benchParse(megabytes: number, dtype: SerializableDType, rounds: number, progress?: Progress): ParseResult {
  const bytes = syntheticAdapterFile(megabytes, dtype);
  const times: number[] = [];
  let copied = 0;
  let allocated = 0;
  let tensors = 0;
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    const parsed = parseSafetensors(bytes);
    times.push(performance.now() - t0);
    const all = Object.values(parsed.tensors);
    tensors = all.length;
    copied = all.filter((t) => t.data.buffer !== bytes.buffer).length;
    allocated = all.reduce((n, t) => n + (t.data.buffer === bytes.buffer ? 0 : t.data.byteLength), 0);
    progress?.step(`adapters: parse ${dtype} ${r + 1}/${rounds}`);
  }
  const ms = median(times);
  const fileMB = bytes.length / 2 ** 20;
  return { dtype, fileMB, tensors, ms, mbPerSec: fileMB / (ms / 1000), copiedTensors: copied, allocatedVsFile: allocated / bytes.length };
}
