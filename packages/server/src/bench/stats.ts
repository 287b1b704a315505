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

/** The p-th percentile (0–100), interpolating linearly between the closest ranks (numpy's default). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return (sorted[lo] as number) + ((sorted[hi] as number) - (sorted[lo] as number)) * (at - lo);
}
