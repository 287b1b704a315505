import type { ChipSpec } from './chips.js';
import type { LlamaShape } from './estimate.js';
import { estimateStep, kvBytesPerToken, type LoRAPriceCache, type LoRASetup, type StepSequence, weightBytesPerChip } from './step.js';
import type { ServingConfig } from './vllm.js';

/**
 * The workloads of the measured runs, scheduled the way vLLM's V1 scheduler would (continuous
 * batching, chunked prefill: every step serves the running requests first, one token per decoding
 * request and the rest of a chunked prompt, then admits waiting requests while the token budget
 * `max_num_batched_tokens`, `max_num_seqs` and the KV cache allow; vllm/v1/core/sched/scheduler.py).
 */

/** Tokens of KV cache one chip can hold: `gpu_memory_utilization` of HBM minus the weights. */
export function kvCapacityTokens(m: LlamaShape, chip: ChipSpec, serving: ServingConfig): number {
  return Math.max(0, Math.floor((serving.gpuMemoryUtilization * chip.hbmBytes - weightBytesPerChip(m)) / kvBytesPerToken(m)));
}

/** One priced variant of a run: a label and its LoRA setup (undefined: the base model). */
export interface Variant {
  /** Name in reports, e.g. 'base' or a preset name. */
  readonly label: string;
  /** The LoRA setup to price; absent for the base model. */
  readonly lora?: LoRASetup;
}

/** Throughput of each variant over one simulated schedule (the schedule is the same for every variant). */
export interface ThroughputResult {
  /** Output tokens per second of each variant (same order as the variants). */
  readonly tokensPerSecond: readonly number[];
  /** Step seconds of each variant, summed over the measured window. */
  readonly seconds: readonly number[];
  /** Output tokens emitted over the measured window (MLPerf: per step, possibly fractional). */
  readonly outputTokens: number;
  /** Steps in the measured window (MLPerf steady state: 1). */
  readonly steps: number;
  /** Mean scheduled (unpadded) tokens and requests per step. */
  readonly meanTokens: number;
  /** Mean scheduled requests per step. */
  readonly meanRequests: number;
}

/**
 * MLPerf offline in steady state: every one of the 24,576 queries is queued at once, so the running
 * set stays full. N running requests = min(max_num_seqs, KV capacity / mean resident tokens per
 * request (input + output/2)). Per step: the N − p decoding requests add one token each, their
 * contexts spread evenly over [input, input + output); p requests prefill, with as many prompt
 * tokens as keep the flow balanced (completions per step = decoders / output, so prompt tokens per
 * step = decoders · input / output), within the token budget.
 */
export function mlperfOfflineStep(
  m: LlamaShape,
  chip: ChipSpec,
  serving: ServingConfig,
  lengths: { input: number; output: number },
  adapters: number,
): {
  /** The steady-state step: decoding sequences first, then prompt chunks. */
  seqs: StepSequence[];
  /** Requests in the running set: min(max_num_seqs, `kvBound`), at least 1. */
  running: number;
  /** Requests the KV cache holds at the mean resident length (input + output / 2). */
  kvBound: number;
  /** Tokens the step emits: one per decoder plus one per finished prompt (fractional). */
  outputTokensPerStep: number;
} {
  const { input, output } = lengths;
  const kvBound = Math.floor(kvCapacityTokens(m, chip, serving) / (input + output / 2));
  const running = Math.max(1, Math.min(serving.maxNumSeqs, kvBound));
  // Solve decoders d and prompt tokens P = d · input / output with d + prompts = running, d + P ≤ budget.
  let decoders = running;
  let promptTokens = 0;
  let prompts = 0;
  for (let d = running; d >= 1; d--) {
    const P = Math.round((d * input) / output);
    const p = Math.ceil(P / input);
    if (d + p <= running && d + P <= serving.maxNumBatchedTokens) {
      decoders = d;
      promptTokens = P;
      prompts = p;
      break;
    }
  }
  const seqs: StepSequence[] = [];
  for (let i = 0; i < decoders; i++) {
    seqs.push({ query: 1, context: Math.round(input + ((i + 0.5) / decoders) * output), slot: i % adapters });
  }
  let left = promptTokens;
  for (let i = 0; i < prompts; i++) {
    const q = Math.min(input, left);
    left -= q;
    seqs.push({ query: q, context: 0, slot: (decoders + i) % adapters });
  }
  // Each decoder emits a token; each finished prompt emits its first token.
  return { seqs, running, kvBound, outputTokensPerStep: decoders + promptTokens / input };
}

/** Output tokens per second of MLPerf offline for each variant. */
export function mlperfOfflineThroughput(
  m: LlamaShape,
  chip: ChipSpec,
  serving: ServingConfig,
  lengths: { input: number; output: number },
  adapters: number,
  variants: readonly Variant[],
  cache?: LoRAPriceCache,
): ThroughputResult & {
  /** Requests in the running set: min(max_num_seqs, `kvBound`), at least 1. */
  running: number;
  /** Requests the KV cache holds at the mean resident length (input + output / 2). */
  kvBound: number;
} {
  const step = mlperfOfflineStep(m, chip, serving, lengths, adapters);
  const seconds = variants.map((v) => estimateStep(m, chip, step.seqs, serving, v.lora, cache).seconds);
  return {
    tokensPerSecond: seconds.map((s) => step.outputTokensPerStep / s),
    seconds,
    outputTokens: step.outputTokensPerStep,
    steps: 1,
    meanTokens: step.seqs.reduce((n, s) => n + s.query, 0),
    meanRequests: step.seqs.length,
    running: step.running,
    kvBound: step.kvBound,
  };
}

interface Request {
  computed: number;
  generated: number;
  slot: number;
}

/**
 * GenAI-Perf at fixed input and output lengths and a fixed concurrency: `concurrency` clients, each
 * sending its next request as soon as the last one finishes. Steps are simulated one by one with the
 * V1 scheduler's policy; the schedule does not depend on how long a step takes (closed loop, no
 * arrival times), so one simulation prices every variant. The first `concurrency` completions are
 * warm-up; throughput is output tokens over the time of the steps after them, up to
 * `measuredCohorts` × concurrency further completions.
 */
export function genaiPerfThroughput(
  m: LlamaShape,
  chip: ChipSpec,
  serving: ServingConfig,
  lengths: { input: number; output: number },
  concurrency: number,
  adapters: number,
  variants: readonly Variant[],
  cache?: LoRAPriceCache,
  measuredCohorts = 2,
): ThroughputResult & {
  /** Tokens of KV cache one chip holds ({@link kvCapacityTokens}). */
  kvCapacity: number;
  /** Most requests running at once during the simulation. */
  maxRunning: number;
} {
  const { input, output } = lengths;
  const capacity = kvCapacityTokens(m, chip, serving);
  const waiting: Request[] = [];
  const running: Request[] = [];
  let nextSlot = 0;
  const newRequest = (): Request => ({ computed: 0, generated: 0, slot: nextSlot++ % adapters });
  for (let c = 0; c < concurrency; c++) waiting.push(newRequest());
  const warm = concurrency;
  const target = warm + measuredCohorts * concurrency;
  let completed = 0;
  const seconds = variants.map(() => 0);
  let outputTokens = 0;
  let steps = 0;
  let tokenSum = 0;
  let requestSum = 0;
  let maxRunning = 0;
  const resident = () => running.reduce((n, r) => n + r.computed, 0);
  const guard = 1e6;
  for (let iter = 0; completed < target && iter < guard; iter++) {
    let budget = serving.maxNumBatchedTokens;
    const scheduled: Array<{ r: Request; q: number }> = [];
    for (const r of running) {
      if (budget <= 0) break;
      const q = r.computed < input ? Math.min(input - r.computed, budget) : 1;
      scheduled.push({ r, q });
      budget -= q;
    }
    // Admit waiting requests while the budget, max_num_seqs and the KV cache (its whole prompt) allow.
    let used = resident() + scheduled.reduce((n, s) => n + s.q, 0);
    while (waiting.length > 0 && budget > 0 && running.length < serving.maxNumSeqs && used + input <= capacity) {
      const r = waiting.shift() as Request;
      running.push(r);
      const q = Math.min(input, budget);
      scheduled.push({ r, q });
      budget -= q;
      used += input;
    }
    if (scheduled.length === 0)
      throw new Error(`nothing schedulable: a ${input}-token prompt does not fit the KV cache (${capacity} tokens)`);
    maxRunning = Math.max(maxRunning, running.length);
    const seqs: StepSequence[] = scheduled.map(({ r, q }) => ({ query: q, context: r.computed, slot: r.slot }));
    const measuring = completed >= warm;
    if (measuring) {
      variants.forEach((v, i) => {
        seconds[i] = (seconds[i] as number) + estimateStep(m, chip, seqs, serving, v.lora, cache).seconds;
      });
      steps++;
      tokenSum += seqs.reduce((n, s) => n + s.query, 0);
      requestSum += seqs.length;
    }
    for (const { r, q } of scheduled) {
      const wasPrefill = r.computed < input;
      r.computed += q;
      // A step emits a token for a decoding request and for a request whose prompt it finished.
      if (!wasPrefill || r.computed >= input) {
        r.generated++;
        if (measuring) outputTokens++;
      }
    }
    for (let i = running.length - 1; i >= 0; i--) {
      const r = running[i] as Request;
      if (r.generated >= output) {
        running.splice(i, 1);
        completed++;
        waiting.push(newRequest());
      }
    }
  }
  return {
    tokensPerSecond: seconds.map((s) => outputTokens / s),
    seconds,
    outputTokens,
    steps,
    meanTokens: tokenSum / Math.max(steps, 1),
    meanRequests: requestSum / Math.max(steps, 1),
    kvCapacity: capacity,
    maxRunning,
  };
}
