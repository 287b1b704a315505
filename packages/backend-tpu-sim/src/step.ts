import { computeMapping } from '@lora/core/backend';
import type { ChipSpec } from './chips.js';
import type { LlamaShape } from './estimate.js';
import { priceLayer } from './estimate.js';
import { resolveTpuSimOptions } from './options.js';
import { TpuSim } from './sim.js';
import { paddedRequests, paddedTokens, VLLM_TPU_DEFAULTS } from './vllm.js';

/**
 * The whole-step model: one vLLM V1 TPU model step (every layer, the sampler, tensor-parallel
 * collectives) on one chip, as a sum of per-op rooflines, with or without the multi-LoRA kernels
 * priced by the simulator. Every constant is a chip figure (chips.ts), a model dimension, or a vLLM
 * default (vllm.ts); nothing is fitted.
 *
 * Per op: time = max(FLOPs / peak, HBM bytes / bandwidth) (the MXU pads operands to its tile, rows
 * to sublanes of 8). Ops run one after another (a transformer step is a chain of dependent ops), so
 * the step is the sum. Collectives use the JAX scaling book's ring cost on one bidirectional ICI
 * axis (jax-ml/scaling-book sharding.md, "AllGather" and "a note on ICI latency"):
 * T_AllGather = ⌊X/2⌋ hops × max(1 µs, 2V / (X · W)), W = bidirectional bandwidth of one ICI link
 * (per-chip ICI bandwidth / ports), and an AllReduce is a ReduceScatter plus an AllGather (2×). A
 * v6e-8 host is a 2×4 slice; a ring through all 8 chips uses only physical links
 * ((0,0)→(0,3)→(1,3)→(1,0)→(0,0)), so the 8-chip ring exists without wraparound links.
 *
 * What the model runs, following vllm-project/vllm vllm/v1/worker/tpu_model_runner.py (May 2025):
 * the decoder on the padded token count, logits for the padded number of requests, a sampler over
 * those logits; vocab-parallel embedding and lm_head (vllm/model_executor/layers/
 * vocab_parallel_embedding.py: masked lookup + all-reduce, logits all-gathered); row-parallel o_proj
 * and down_proj each followed by an all-reduce (vllm/model_executor/layers/linear.py).
 */

/** One sequence scheduled in a step: its new tokens, the tokens already in its KV cache, its adapter slot (-1: none). */
export interface StepSequence {
  /** Tokens scheduled for it this step: 1 when decoding, a prompt chunk when prefilling. */
  readonly query: number;
  /** Tokens already in its KV cache, which attention reads. */
  readonly context: number;
  /** Its adapter's slot, -1 for the base model. */
  readonly slot: number;
}

/** The multi-LoRA configuration of a run: kernel options (preset, flags) and vLLM's LoRA settings. */
export interface LoRASetup {
  /** `backendOptions` of the tpu-sim backend (preset, flags); the chip comes from the step. */
  readonly options: Readonly<Record<string, unknown>>;
  /** `max_loras`: adapter slots in every stack, whatever the batch uses. */
  readonly maxLoras: number;
  /** `max_lora_rank`: the stacks are this wide whatever the adapters' own rank. */
  readonly rank: number;
  /**
   * LoRA on lm_head (vLLM's LogitsProcessorWithLoRA: shrink hidden→rank, expand rank→padded vocab
   * on the sampled rows). PR 15655 disabled it on TPU for a ~1.5 s stall ("I've disabled this for
   * now", PR description, 2025-03-27), so the measured runs had it off.
   */
  readonly logits: boolean;
  /**
   * LoRA on the token embedding (VocabParallelEmbeddingWithLoRA: an expand rank→hidden per token,
   * `add_lora_embedding`, laning off). vLLM wraps embed_tokens whenever LoRA is enabled for Llama.
   */
  readonly embedding: boolean;
}

/** One priced part of a step on one chip (an op, or an op summed over every layer). */
export interface ComponentCost {
  /** What it is, e.g. 'qkv_proj', 'attention (paged KV cache)', 'logits all-gather'. */
  readonly name: string;
  /** Estimated time, seconds: a roofline for compute and memory ops, the ring cost for collectives, the simulator's estimate for LoRA parts. */
  readonly seconds: number;
  /** FLOPs issued (MXU-padded for matmuls). */
  readonly flops: number;
  /** HBM bytes read and written. */
  readonly hbmBytes: number;
  /** Bytes of the array a collective moves, summed over its repeats; 0 for local ops and on one chip. */
  readonly iciBytes: number;
}

/** One model step on one chip, base and LoRA parts itemised. */
export interface StepEstimate {
  /** Scheduled tokens (sum of the sequences' `query`). */
  readonly tokens: number;
  /** Tokens the model runs on: the first vLLM token padding ≥ `tokens`. */
  readonly paddedTokens: number;
  /** Scheduled sequences. */
  readonly requests: number;
  /** Rows lm_head and the sampler run on: vLLM's request padding of `requests`. */
  readonly paddedRequests: number;
  /** Base-model components, in execution order. */
  readonly base: readonly ComponentCost[];
  /** LoRA components; empty without a LoRA setup or when no token has an adapter. */
  readonly lora: readonly ComponentCost[];
  /** Sum of `base`, seconds. */
  readonly baseSeconds: number;
  /** Sum of `lora`, seconds. */
  readonly loraSeconds: number;
  /** Step time: `baseSeconds` + `loraSeconds`. */
  readonly seconds: number;
}

const BF16 = 2;
const roundUp = (x: number, m: number): number => Math.ceil(x / m) * m;

/** Roofline of one op on one chip. */
export function opSeconds(chip: ChipSpec, flops: number, hbmBytes: number): number {
  return Math.max(flops / chip.peakBf16Flops, hbmBytes / chip.hbmBytesPerSecond);
}

/** A bf16 matmul `[rows, k] · [k, n]` whose weights are read from HBM once; MXU work padded to its tile. */
export function matmulCost(chip: ChipSpec, name: string, rows: number, k: number, n: number, times = 1): ComponentCost {
  const flops = 2 * roundUp(rows, 8) * roundUp(k, chip.mxu) * roundUp(n, chip.mxu) * times;
  const hbmBytes = BF16 * (k * n + rows * k + rows * n) * times;
  return { name, seconds: opSeconds(chip, flops, hbmBytes), flops, hbmBytes, iciBytes: 0 };
}

/** Bidirectional bandwidth of one ICI link (the scaling book's W_ici for one axis). */
export const iciLinkBytesPerSecond = (chip: ChipSpec): number => chip.iciBidirectionalBytesPerSecond / chip.iciPorts;

/** AllGather of a `bytes`-sized result over a ring of `chips` (scaling book: ⌊X/2⌋ hops of max(latency, 2V/(X·W))). */
export function allGatherSeconds(chip: ChipSpec, bytes: number, chips: number): number {
  if (chips <= 1) return 0;
  const hops = Math.floor(chips / 2);
  return hops * Math.max(chip.iciHopSeconds, (2 * bytes) / (chips * iciLinkBytesPerSecond(chip)));
}

/** AllReduce = ReduceScatter + AllGather of the same array. */
export function allReduceSeconds(chip: ChipSpec, bytes: number, chips: number): number {
  return 2 * allGatherSeconds(chip, bytes, chips);
}

function collective(
  chip: ChipSpec,
  name: string,
  kind: 'all-reduce' | 'all-gather',
  bytes: number,
  chips: number,
  times = 1,
): ComponentCost {
  const one = kind === 'all-reduce' ? allReduceSeconds(chip, bytes, chips) : allGatherSeconds(chip, bytes, chips);
  return { name, seconds: one * times, flops: 0, hbmBytes: 0, iciBytes: chips > 1 ? bytes * times : 0 };
}

function memoryOp(chip: ChipSpec, name: string, hbmBytes: number): ComponentCost {
  return { name, seconds: opSeconds(chip, 0, hbmBytes), flops: 0, hbmBytes, iciBytes: 0 };
}

/**
 * Attention over the paged KV cache for the step's sequences, one layer, one chip (its kv/tp heads):
 * every cached token's K and V read once per layer, the new tokens' K and V written, and
 * 2 · 2 FLOPs per (query token, visible key, query-head dimension) for q·Kᵀ and p·V (causal within
 * a prefill chunk: a chunk of q tokens at position c sees c + (q + 1) / 2 keys on average).
 */
export function attentionCost(chip: ChipSpec, m: LlamaShape, seqs: readonly StepSequence[]): ComponentCost {
  const kvPerToken = (2 * BF16 * m.kv) / m.tp;
  let hbmBytes = 0;
  let flops = 0;
  for (const s of seqs) {
    hbmBytes += (s.context + s.query) * kvPerToken + s.query * kvPerToken; // read cache (incl. new) + write new K/V
    hbmBytes += 2 * s.query * (m.q / m.tp) * BF16; // read q, write output
    flops += 4 * s.query * (s.context + (s.query + 1) / 2) * (m.q / m.tp);
  }
  return { name: 'attention (paged KV cache)', seconds: opSeconds(chip, flops, hbmBytes), flops, hbmBytes, iciBytes: 0 };
}

/** KV-cache bytes one token occupies on one chip (K and V of every layer, bf16). */
export const kvBytesPerToken = (m: LlamaShape): number => (2 * BF16 * m.kv * m.layers) / m.tp;

/** Weight bytes one chip holds (linear layers, embedding and lm_head, bf16). */
export function weightBytesPerChip(m: LlamaShape): number {
  const perLayer = m.hidden * (m.q + 2 * m.kv) + m.q * m.hidden + 3 * m.hidden * m.intermediate;
  return (BF16 * (perLayer * m.layers + 2 * m.vocab * m.hidden)) / m.tp;
}

/** Base model step (no LoRA) on one chip, component by component. */
export function baseStepComponents(
  m: LlamaShape,
  chip: ChipSpec,
  seqs: readonly StepSequence[],
  maxNumBatchedTokens: number,
  maxNumSeqs: number,
): {
  /** The step's ops in execution order. */
  components: ComponentCost[];
  /** Scheduled tokens. */
  tokens: number;
  /** Tokens the decoder runs on (vLLM's token padding). */
  paddedTokens: number;
  /** Scheduled sequences. */
  requests: number;
  /** Rows of lm_head and the sampler (vLLM's request padding). */
  paddedRequests: number;
} {
  const tokens = seqs.reduce((n, s) => n + s.query, 0);
  const T = paddedTokens(tokens, maxNumBatchedTokens);
  const R = paddedRequests(seqs.length, Math.max(maxNumSeqs, VLLM_TPU_DEFAULTS.minNumSeqs));
  const L = m.layers;
  const tp = m.tp;
  const H = m.hidden;
  const act = T * H * BF16;
  const c: ComponentCost[] = [];
  c.push(memoryOp(chip, 'embedding lookup', 2 * act + T * 4));
  if (tp > 1) c.push(collective(chip, 'embedding all-reduce', 'all-reduce', act, tp));
  // Per layer, L times: two RMSNorms (read + write), the four linear layers, attention, SiLU·mul, two all-reduces.
  c.push(memoryOp(chip, 'rmsnorm ×2 per layer', 2 * 2 * act * L));
  c.push(matmulCost(chip, 'qkv_proj', T, H, (m.q + 2 * m.kv) / tp, L));
  const att = attentionCost(chip, m, seqs);
  c.push({ ...att, seconds: att.seconds * L, flops: att.flops * L, hbmBytes: att.hbmBytes * L });
  c.push(matmulCost(chip, 'o_proj', T, m.q / tp, H, L));
  c.push(matmulCost(chip, 'gate_up_proj', T, H, (2 * m.intermediate) / tp, L));
  c.push(memoryOp(chip, 'silu·mul', 3 * T * (m.intermediate / tp) * BF16 * L));
  c.push(matmulCost(chip, 'down_proj', T, m.intermediate / tp, H, L));
  if (tp > 1) c.push(collective(chip, 'all-reduce after o_proj and down_proj', 'all-reduce', act, tp, 2 * L));
  c.push(memoryOp(chip, 'final norm', 2 * act));
  // Logits for the padded number of requests (vocab-parallel lm_head), gathered, then sampled.
  c.push(matmulCost(chip, 'lm_head', R, H, m.vocab / tp));
  if (tp > 1) c.push(collective(chip, 'logits all-gather', 'all-gather', R * m.vocab * BF16, tp));
  c.push(memoryOp(chip, 'sampler (reads f32 logits)', R * m.vocab * 4));
  return { components: c, tokens, paddedTokens: T, requests: seqs.length, paddedRequests: R };
}

const empty = new Float32Array(0);

/** Caches LoRA step prices: the same padded shapes and adapter pattern cost the same. */
export class LoRAPriceCache {
  readonly #map = new Map<string, ComponentCost[]>();
  /** Lookups answered from the cache. */
  hits = 0;
  /** Lookups that had to price. */
  misses = 0;

  /**
   * The cached price for `key`, or `price()` computed and stored on the first lookup.
   * @param key - everything the price depends on (model, chip, setup, padded shapes, slot pattern)
   */
  get(key: string, price: () => ComponentCost[]): ComponentCost[] {
    const hit = this.#map.get(key);
    if (hit !== undefined) {
      this.hits++;
      return hit;
    }
    this.misses++;
    const v = price();
    this.#map.set(key, v);
    return v;
  }
}

function simFor(setup: LoRASetup, chip: ChipSpec): TpuSim {
  return new TpuSim(resolveTpuSimOptions({ ...setup.options, chip: chip.name }), { costOnly: true });
}

const simCost = (name: string, sim: TpuSim, times: number): ComponentCost => ({
  name,
  seconds: sim.totals.kernelMicros * 1e-6 * times,
  flops: sim.totals.mxuFlops * times,
  hbmBytes: sim.totals.hbmBytes * times,
  iciBytes: 0,
});

/**
 * The LoRA work of one step on one chip, priced by the simulator (cost-only): shrink + expand of
 * q/k/v, o, gate/up and down on every layer (the kernels and, without pre-transposition, the
 * per-call transpose; not the float32-API glue), plus the embedding and logits LoRA when set.
 * vLLM's punica wrapper skips the kernels when no token has an adapter (`no_lora`).
 */
export function loraStepComponents(
  m: LlamaShape,
  chip: ChipSpec,
  seqs: readonly StepSequence[],
  setup: LoRASetup,
  maxNumBatchedTokens: number,
  paddedReqs: number,
  cache?: LoRAPriceCache,
): ComponentCost[] {
  const tokenSlots: number[] = [];
  for (const s of seqs) for (let q = 0; q < s.query; q++) tokenSlots.push(s.slot);
  const maxNumTokens = paddedTokens(tokenSlots.length, maxNumBatchedTokens);
  const price = (): ComponentCost[] => {
    const meta = computeMapping(Int32Array.from(tokenSlots), { maxLoras: setup.maxLoras, maxNumTokens });
    if (meta.noLoRA) return [];
    const stack = { adapters: setup.maxLoras, rank: setup.rank };
    const out: ComponentCost[] = [];
    const layer = simFor(setup, chip);
    priceLayer(layer, m, meta, stack);
    out.push(simCost('LoRA q/k/v, o, gate/up, down (every layer)', layer, m.layers));
    if (setup.embedding) {
      // add_lora_embedding: expand only, lanes off (the PR's punica_tpu passes enable_laning=False).
      const einsum = (setup.options.preset ?? 'all-on') === 'einsum';
      const opts = einsum ? setup.options : { ...setup.options, flags: { ...(setup.options.flags as object), laning: false } };
      const sim = new TpuSim(resolveTpuSimOptions({ ...opts, chip: chip.name }), { costOnly: true });
      sim.expand({
        y: empty,
        width: m.hidden,
        x: empty,
        loraB: [empty],
        slots: setup.maxLoras,
        rank: setup.rank,
        outputSlices: [m.hidden],
        offsetStart: 0,
        addInputs: true,
        meta,
      });
      out.push(simCost('LoRA embedding (expand)', sim, 1));
    }
    if (setup.logits) {
      // add_lora_logits on the sampled rows (sampler indices, padded to the request padding with -1):
      // shrink hidden→rank and expand rank→vocab padded to lora_vocab_padding_size, unsharded.
      const rowSlots = seqs.map((s) => s.slot);
      while (rowSlots.length < paddedReqs) rowSlots.push(-1);
      const rows = computeMapping(Int32Array.from(rowSlots), { maxLoras: setup.maxLoras, maxNumTokens: paddedReqs });
      if (!rows.noLoRA) {
        const vocab = roundUp(m.vocab + VLLM_TPU_DEFAULTS.loraExtraVocabSize, VLLM_TPU_DEFAULTS.loraVocabPaddingSize);
        const sim = simFor(setup, chip);
        sim.shrink({ x: empty, hidden: m.hidden, loraA: [empty], slots: setup.maxLoras, rank: setup.rank, meta: rows, scale: 1 });
        sim.expand({
          y: empty,
          width: vocab,
          x: empty,
          loraB: [empty],
          slots: setup.maxLoras,
          rank: setup.rank,
          outputSlices: [vocab],
          offsetStart: 0,
          addInputs: true,
          meta: rows,
        });
        out.push(simCost('LoRA logits (shrink + expand over the vocab)', sim, 1));
      }
    }
    return out;
  };
  if (!cache) return price();
  const key = [
    m.name,
    chip.name,
    JSON.stringify(setup),
    maxNumTokens,
    paddedReqs,
    runLength(tokenSlots),
    setup.logits ? runLength(seqs.map((s) => s.slot)) : '',
  ].join('|');
  return cache.get(key, price);
}

/** `0,0,0,1,1` → `0x3,1x2`: a compact cache key for a slot pattern. */
function runLength(xs: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < xs.length; ) {
    let j = i;
    while (j < xs.length && xs[j] === xs[i]) j++;
    parts.push(`${xs[i]}x${j - i}`);
    i = j;
  }
  return parts.join(',');
}

/** One step with or without LoRA. */
export function estimateStep(
  m: LlamaShape,
  chip: ChipSpec,
  seqs: readonly StepSequence[],
  serving: { maxNumBatchedTokens: number; maxNumSeqs: number },
  lora?: LoRASetup,
  cache?: LoRAPriceCache,
): StepEstimate {
  const base = baseStepComponents(m, chip, seqs, serving.maxNumBatchedTokens, serving.maxNumSeqs);
  const loraParts = lora ? loraStepComponents(m, chip, seqs, lora, serving.maxNumBatchedTokens, base.paddedRequests, cache) : [];
  const baseSeconds = base.components.reduce((s, c) => s + c.seconds, 0);
  const loraSeconds = loraParts.reduce((s, c) => s + c.seconds, 0);
  return {
    tokens: base.tokens,
    paddedTokens: base.paddedTokens,
    requests: base.requests,
    paddedRequests: base.paddedRequests,
    base: base.components,
    lora: loraParts,
    baseSeconds,
    loraSeconds,
    seconds: baseSeconds + loraSeconds,
  };
}
