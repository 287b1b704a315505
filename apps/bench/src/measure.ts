import { median } from '@lora/llama/demo';
import * as tf from '@tensorflow/tfjs-core';
import type { Progress } from './progress.js';

// The one quantile/median of the benchmarks and the demo.
export { median, quantile } from '@lora/llama/demo';

/** One contender: prepared once (weights uploaded), then run repeatedly. */
export interface Method {
  readonly id: string;
  readonly label: string;
  /** tfjs backend the method runs on; selected before its timer starts. */
  readonly tfBackend: string;
  /** One full call. */
  run(): tf.Tensor;
}

export interface Sample {
  id: string;
  label: string;
  tfBackend: string;
  times: number[];
  median: number;
  min: number;
  max: number;
}

export interface MeasureOptions {
  /** Interleaved rounds: every method once per round, so all see the same machine state. */
  rounds: number;
  /** A method stops taking samples once its samples add up to this (it keeps at least one). */
  budgetMs: number;
  /** A warm-up slower than this counts as the method's first sample (no point warming 70 s runs). */
  slowMs: number;
  progress?: Progress;
  prefix?: string;
  /** Run the methods in reverse order every other round, so that neither always goes first (a pair compared round by round). */
  alternate?: boolean;
}

/**
 * tfjs "cpu" and "wasm" compute synchronously: the output is complete when run() returns, and a
 * read-back would only add a copy of the output to every contender (0.2 ms of a 0.4 ms kernel at
 * decode). Backends that queue work (webgl, webgpu) must finish inside the timer.
 */
const SYNCHRONOUS = new Set(['cpu', 'wasm']);

/**
 * GPU calls are queued `depth` at a time and read back once, and the time is per call: in a model
 * the LoRA ops sit between other queued ops, and a read-back per call would add the same fixed
 * latency (about 5 ms in Chromium's WebGL: fence polling through clamped timers) to every contender.
 */
async function timeOnce(m: Method, depth = 1): Promise<number> {
  await tf.setBackend(m.tfBackend);
  const t0 = performance.now();
  let out = m.run();
  if (SYNCHRONOUS.has(m.tfBackend)) {
    const ms = performance.now() - t0;
    out.dispose();
    return ms;
  }
  for (let i = 1; i < depth; i++) {
    // Disposing a queued output is safe: the GPU runs the queue in order.
    out.dispose();
    out = m.run();
  }
  // Async read-back: it waits for the queued GPU work (Node's WebGPU has no synchronous read).
  await out.data();
  const ms = (performance.now() - t0) / depth;
  out.dispose();
  return ms;
}

/**
 * A fast CPU method runs its JavaScript (core's checks, the kernel driver) in V8's baseline tiers
 * until it has been called a few hundred times: one warm-up call left a T = 1 `addLoRALinear` at
 * ~300 µs per sample, against ~50 µs once optimised — in a model it is called thousands of times.
 * 200 calls were not enough either: the grid's T = 1 points, first in the process, read 90–110 µs
 * per call at H = 1024 where the same calls after 3,000 read 20–60 µs. So it is called until
 * 2,000 calls or 300 ms have passed, whichever comes first.
 */
async function warmUpJit(m: Method): Promise<void> {
  await tf.setBackend(m.tfBackend);
  const end = performance.now() + 300;
  for (let i = 0; i < 2000 && performance.now() < end; i++) m.run().dispose();
}

/** Queue depth for a GPU method: about 100 ms of work per sample, 1 to 8 calls. */
const queueDepth = (warmMs: number): number => Math.max(1, Math.min(8, Math.round(100 / Math.max(warmMs, 1))));

export async function measure(methods: readonly Method[], opts: MeasureOptions): Promise<Map<string, Sample>> {
  const times = new Map<string, number[]>(methods.map((m) => [m.id, []]));
  const depth = new Map<string, number>();
  for (const m of methods) {
    const warm = await timeOnce(m);
    if (warm > opts.slowMs) times.get(m.id)!.push(warm);
    else if (SYNCHRONOUS.has(m.tfBackend)) await warmUpJit(m);
    // The warm-up compiles GPU programs: the queue depth comes from a second call.
    depth.set(m.id, SYNCHRONOUS.has(m.tfBackend) || warm > opts.slowMs ? 1 : queueDepth(await timeOnce(m)));
    opts.progress?.step(`${opts.prefix ?? ''}warm-up ${m.label} (${warm.toFixed(1)} ms)`);
  }
  for (let r = 0; r < opts.rounds; r++) {
    for (const m of opts.alternate && r % 2 === 1 ? [...methods].reverse() : methods) {
      const ts = times.get(m.id)!;
      const spent = ts.reduce((a, b) => a + b, 0);
      if (ts.length > 0 && spent >= opts.budgetMs) continue;
      ts.push(await timeOnce(m, depth.get(m.id)));
    }
    opts.progress?.step(`${opts.prefix ?? ''}round ${r + 1}/${opts.rounds}`);
  }
  const out = new Map<string, Sample>();
  for (const m of methods) {
    const ts = times.get(m.id)!;
    out.set(m.id, {
      id: m.id,
      label: m.label,
      tfBackend: m.tfBackend,
      times: ts,
      median: median(ts),
      min: Math.min(...ts),
      max: Math.max(...ts),
    });
  }
  return out;
}
