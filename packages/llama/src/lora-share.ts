import type { LoRAAdapter } from '@lora/core';
import type { ModelConfig } from './config.js';
import type { GenerateRequest } from './engine/engine.js';
import { moduleSpecs } from './modules.js';

/**
 * What LoRA must cost in one decode step, as fractions of the base step: the bytes it has to read
 * (each distinct adapter's A and B at its true rank, float32) over the bytes the base step reads
 * (every linear weight, lm_head included, and the KV cache), and its FLOPs over the base step's.
 * A decode step on a CPU is bound by memory until concurrency makes it bound by arithmetic, so a
 * kernel that streams at the base's rate costs about the larger of the two: a measured slowdown
 * far above it is overhead, not LoRA (issue #17's "inherent share").
 */
export interface LoRAStepShare {
  /** LoRA bytes / base bytes. */
  readonly bytes: number;
  /** LoRA FLOPs / base FLOPs. */
  readonly flops: number;
}

/**
 * What LoRA must cost in the step, as one fraction of the base step: the larger of its bytes and
 * FLOPs shares (the step is bound by whichever of memory and arithmetic it runs out of first).
 */
export const inherentShare = (share: LoRAStepShare): number => Math.max(share.bytes, share.flops);

/** The decode step whose LoRA share {@link decodeLoRAShare} computes. */
export interface DecodeStep {
  /** Tokens already in each sequence's KV cache (the step attends over these plus its own). */
  readonly length: number;
  /** One entry per sequence in the step (one token each): its adapter, or null for the base model. */
  readonly adapters: readonly (LoRAAdapter | null)[];
}

const F32 = 4;

/** A module's LoRA reads and multiply-adds per token: A is `[r, in]`, B is `[out, r]`. */
const moduleSize = (m: { rank: number; inFeatures: number; outFeatures: number }) => m.rank * (m.inFeatures + m.outFeatures);

/**
 * The share of a decode step LoRA must cost on a model of this config (linear modules; an
 * embedding adapter reads only its tokens' rows and is left out). Adapters count at their true
 * ranks, not the runtime's padded `maxLoraRank`.
 */
export function decodeLoRAShare(config: ModelConfig, step: DecodeStep): LoRAStepShare {
  const c = step.adapters.length;
  const weightParams = moduleSpecs(config)
    .filter((m) => m.kind === 'linear')
    .reduce((n, m) => n + m.inFeatures * m.outFeatures, 0);
  const positions = step.length + 1;
  // K and V of every layer, read once per sequence; QKᵀ and the weighted sum of V: 2 FLOPs per
  // multiply-add, over every query head.
  const kvBytes = F32 * 2 * config.numHiddenLayers * config.numKeyValueHeads * config.headDim * positions * c;
  const attentionFlops = 2 * 2 * config.numHiddenLayers * config.numAttentionHeads * config.headDim * positions * c;
  const perToken = (a: LoRAAdapter) => [...a.modules.values()].filter((m) => m.kind === 'linear').reduce((n, m) => n + moduleSize(m), 0);
  const present = step.adapters.filter((a): a is LoRAAdapter => a !== null);
  const loraBytes = F32 * [...new Set(present)].reduce((n, a) => n + perToken(a), 0);
  const loraFlops = 2 * present.reduce((n, a) => n + perToken(a), 0);
  return {
    bytes: loraBytes / (F32 * weightParams + kvBytes),
    flops: loraFlops / (2 * weightParams * c + attentionFlops),
  };
}

/**
 * The decode step a request queue's first batch runs: its first `maxNumSeqs` requests together,
 * each at the queue's median prompt length (a text prompt counts 0 tokens: it is not tokenized
 * here), each on its adapter (`adapterOf` looks an id up; unknown ids and no adapter count as the
 * base model).
 */
export function queueDecodeStep(
  requests: readonly GenerateRequest[],
  adapterOf: (id: string) => LoRAAdapter | undefined,
  maxNumSeqs = requests.length,
): DecodeStep {
  const batch = requests.slice(0, maxNumSeqs);
  const lengths = batch.map((r) => (typeof r.prompt === 'string' ? 0 : r.prompt.length)).sort((a, b) => a - b);
  return {
    length: lengths[lengths.length >> 1] ?? 0,
    adapters: batch.map((r) => (r.adapter ? (adapterOf(r.adapter) ?? null) : null)),
  };
}
