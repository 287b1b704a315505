import { quantile } from '@lora/llama/demo';

/** One streamed completion as a benchmark client sees it. */
export interface StreamTiming {
  /** Request sent → first token (ms). */
  readonly ttftMs: number;
  /** Gaps between consecutive tokens (ms); a chunk of k tokens counts as k gaps of equal share. */
  readonly itlMs: readonly number[];
  /** Request sent → last byte (ms). */
  readonly e2eMs: number;
  /** Output tokens received (each chunk's `token_ids`, streamed with `return_token_ids`); 0 for a failed request. */
  readonly tokens: number;
  /** Set when the request failed (its latencies are left out and its `tokens` is 0), as vLLM's benchmark_serving.py records a failed request and goes on. */
  readonly error?: string;
}

/** The p-th percentile (0–100), interpolating linearly between the closest ranks (numpy's default); NaN for no values. */
export function percentile(values: readonly number[], p: number): number {
  return values.length === 0 ? Number.NaN : quantile(values, p / 100);
}
