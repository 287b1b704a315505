/**
 * Summaries of repeated measurements, for the demo's and the benchmarks' interleaved rounds: a
 * ratio measured once moves by tens of points on a busy machine, so every figure is a median with
 * its spread, and a spread that reaches zero is reported as noise, never as a speed-up.
 */

/** The q-quantile (0–1) of `xs`, interpolating linearly between order statistics (numpy's default). */
export function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  const at = (s.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.min(lo + 1, s.length - 1);
  return (s[lo] as number) + ((s[hi] as number) - (s[lo] as number)) * (at - lo);
}

/** The median of `xs` (the 0.5-quantile). */
export function median(xs: readonly number[]): number {
  return quantile(xs, 0.5);
}

/** Per-round values (e.g. LoRA's slowdown in each round) summarised by {@link roundSpread}. */
export interface RoundSpread {
  /** The median round's value. */
  readonly median: number;
  /** The 25th percentile. */
  readonly low: number;
  /** The 75th percentile. */
  readonly high: number;
  /** How many rounds there were. */
  readonly rounds: number;
  /** The interquartile range reaches zero: a quarter of the rounds or more saw no cost. */
  readonly withinNoise: boolean;
}

/** Median and interquartile range of per-round values; `withinNoise` when the range reaches 0. */
export function roundSpread(values: readonly number[]): RoundSpread {
  const low = quantile(values, 0.25);
  return { median: median(values), low, high: quantile(values, 0.75), rounds: values.length, withinNoise: low <= 0 };
}
