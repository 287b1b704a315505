import type { ChipSpec } from './chips.js';

/**
 * vLLM's V1 TPU runner and engine defaults at the time of the multi-LoRA PRs (vLLM PR 14238, merged
 * March 2025; PR 15655, merged May 2025), each with where it is set. These are configuration
 * values, not tuned numbers: the whole-step model schedules batches the way that runner would.
 *
 * - `MIN_NUM_SEQS = 8`, request padding and token padding: vllm-project/vllm
 *   vllm/v1/worker/tpu_model_runner.py (`MIN_NUM_SEQS`, `_get_token_paddings(min_token_size=16,
 *   max_token_size=max_num_batched_tokens, padding_gap=VLLM_TPU_BUCKET_PADDING_GAP)`,
 *   `_get_req_paddings`, `_get_padded_num_reqs_with_upper_limit`); the model runs on the padded
 *   token count and computes logits for the padded number of requests (`select_hidden_states`,
 *   `compute_logits`).
 * - `VLLM_TPU_BUCKET_PADDING_GAP` defaults to 0 (exponential paddings 16, 32, 64, …):
 *   vllm/envs.py.
 * - `max_num_seqs` 256 and the TPU `max_num_batched_tokens` table (LLM class: v6e 2048, v5e 1024;
 *   OpenAI API server: v6e 1024, v5e 512): vllm/engine/arg_utils.py `EngineArgs._set_default_args_v1`
 *   (May 2025 version, the one that cites PR #17885 for A100).
 * - `gpu_memory_utilization` 0.9: vllm/engine/arg_utils.py `EngineArgs` default.
 * - LoRA: `max_loras` 1, `max_lora_rank` 16, `lora_extra_vocab_size` 256, `lora_vocab_padding_size`
 *   256: vllm/config.py `LoRAConfig` (May 2025).
 */
export const VLLM_TPU_DEFAULTS = Object.freeze({
  /** `MIN_NUM_SEQS`: the smallest request padding; logits are computed for at least this many rows. */
  minNumSeqs: 8,
  /** `min_token_size`: the smallest token padding. */
  minTokenPadding: 16,
  /** `VLLM_TPU_BUCKET_PADDING_GAP`: 0 gives exponential token paddings (16, 32, 64, …). */
  bucketPaddingGap: 0,
  /** `max_num_seqs`: the most requests running at once. */
  maxNumSeqs: 256,
  /** `gpu_memory_utilization`: the fraction of HBM vLLM may use for weights and KV cache. */
  gpuMemoryUtilization: 0.9,
  /** `max_loras`: adapter slots on the device. */
  maxLoras: 1,
  /** `max_lora_rank`: the rank every LoRA stack is allocated with. */
  maxLoraRank: 16,
  /** `lora_extra_vocab_size`: tokens an adapter may add to the vocabulary (logits LoRA). */
  loraExtraVocabSize: 256,
  /** `lora_vocab_padding_size`: the logits LoRA's vocabulary is padded to a multiple of this. */
  loraVocabPaddingSize: 256,
});

/** How vLLM was started: the offline `LLM` class (MLPerf harness) or `vllm serve` (GenAI-Perf). */
export type UsageContext = 'LLM_CLASS' | 'OPENAI_API_SERVER';

const TPU_MAX_NUM_BATCHED_TOKENS: Readonly<Record<UsageContext, Readonly<Record<ChipSpec['name'], number>>>> = Object.freeze({
  LLM_CLASS: { v6e: 2048, v5e: 1024 },
  OPENAI_API_SERVER: { v6e: 1024, v5e: 512 },
});

/** vLLM's default `max_num_batched_tokens` on a TPU chip for a usage context. */
export function defaultMaxNumBatchedTokens(chip: ChipSpec['name'], usage: UsageContext): number {
  return TPU_MAX_NUM_BATCHED_TOKENS[usage][chip];
}

/** `_get_token_paddings` with padding gap 0: 16, 32, … up to the first value ≥ max_num_batched_tokens. */
export function tokenPaddings(maxNumBatchedTokens: number, min = VLLM_TPU_DEFAULTS.minTokenPadding): number[] {
  const out: number[] = [];
  for (let n = min; ; n *= 2) {
    out.push(n);
    if (n >= maxNumBatchedTokens) return out;
  }
}

/** `_get_padded_token_len`: the first token padding ≥ n. */
export function paddedTokens(n: number, maxNumBatchedTokens: number): number {
  const paddings = tokenPaddings(maxNumBatchedTokens);
  const p = paddings.find((x) => x >= n);
  if (p === undefined) throw new RangeError(`${n} tokens exceed the largest padding ${paddings.at(-1)}`);
  return p;
}

/** `_get_padded_num_reqs_with_upper_limit`: 8, then the next power of two, capped at max_num_reqs. */
export function paddedRequests(n: number, maxNumReqs: number): number {
  const res = n <= VLLM_TPU_DEFAULTS.minNumSeqs ? VLLM_TPU_DEFAULTS.minNumSeqs : 2 ** Math.ceil(Math.log2(n));
  return Math.min(res, Math.max(maxNumReqs, VLLM_TPU_DEFAULTS.minNumSeqs));
}

/** `_get_req_paddings`: every request padding the runner precompiles. */
export function requestPaddings(maxNumReqs: number): number[] {
  const out: number[] = [];
  let n: number = VLLM_TPU_DEFAULTS.minNumSeqs;
  while (n <= Math.max(maxNumReqs, VLLM_TPU_DEFAULTS.minNumSeqs) && out.at(-1) !== n) {
    out.push(n);
    n = paddedRequests(n + 1, maxNumReqs);
  }
  return out;
}

/** What a serving run was configured with (the defaults above unless a run set them). */
export interface ServingConfig {
  /** `max_num_seqs`: the most requests scheduled in one step; also caps request padding. */
  readonly maxNumSeqs: number;
  /** `max_num_batched_tokens`: the token budget of one step; the largest token padding is the first one ≥ it. */
  readonly maxNumBatchedTokens: number;
  /** `gpu_memory_utilization`: fraction of HBM for weights plus KV cache; what the weights leave is the KV cache. */
  readonly gpuMemoryUtilization: number;
}

/** vLLM's defaults for a chip and usage context: {@link VLLM_TPU_DEFAULTS} plus the TPU `max_num_batched_tokens` table. */
export function defaultServingConfig(chip: ChipSpec['name'], usage: UsageContext): ServingConfig {
  return {
    maxNumSeqs: VLLM_TPU_DEFAULTS.maxNumSeqs,
    maxNumBatchedTokens: defaultMaxNumBatchedTokens(chip, usage),
    gpuMemoryUtilization: VLLM_TPU_DEFAULTS.gpuMemoryUtilization,
  };
}
