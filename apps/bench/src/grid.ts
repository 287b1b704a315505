import type { LoRABackend } from '@lora/core';
import { type Method, measure, type Sample } from './measure.js';
import { type BackendSpec, buildBackendContenders, type KernelShape } from './methods.js';

/** The kernel grid of the benchmark issue: token counts × distinct adapters × ranks at one H = O. */
export interface GridAxes {
  tokens: readonly number[];
  adapters: readonly number[];
  ranks: readonly number[];
  hidden: number;
  out: number;
}

export const GRIDS: Record<'full' | 'quick' | 'tiny', GridAxes> = {
  full: { tokens: [1, 8, 32, 128, 512, 2048], adapters: [1, 4, 8, 16], ranks: [8, 16, 64], hidden: 4096, out: 4096 },
  quick: { tokens: [1, 32, 512], adapters: [1, 4, 16], ranks: [8, 64], hidden: 1024, out: 1024 },
  tiny: { tokens: [1, 8, 40], adapters: [1, 4], ranks: [4, 8], hidden: 64, out: 48 },
};

/**
 * The grid's points. A batch of T tokens holds at most T distinct adapters, so points with more
 * adapters than tokens are left out. Small batches interleave adapters token by token (decode);
 * large ones hold one contiguous run per adapter (prefill).
 */
export function gridShapes(axes: GridAxes): KernelShape[] {
  const shapes: KernelShape[] = [];
  for (const T of axes.tokens) {
    for (const n of axes.adapters) {
      if (n > T) continue;
      for (const R of axes.ranks) {
        shapes.push({
          name: `T=${T} n=${n} r=${R}`,
          numTokens: T,
          numAdapters: n,
          hidden: axes.hidden,
          out: axes.out,
          rank: R,
          layout: T <= 128 ? 'interleaved' : 'segments',
        });
      }
    }
  }
  return shapes;
}

/** GB/s (10⁹ bytes per second) at which `bytes` were moved in `milliseconds`. */
export const gbps = (bytes: number, milliseconds: number): number => bytes / (milliseconds / 1000) / 1e9;

/** What one addLoRALinear must read and write at least: A and B of the active slots, x, y and the output. */
export function loraBytes(shape: KernelShape): number {
  const { numTokens: T, numAdapters: n, hidden: H, out: O, rank: R } = shape;
  return 4 * (n * R * H + n * O * R + T * H + 2 * T * O);
}

/** Multiply-adds × 2 of shrink + expand. */
export const loraFlops = (s: KernelShape): number => 2 * s.numTokens * s.rank * (s.hidden + s.out);
export const baseFlops = (s: KernelShape): number => 2 * s.numTokens * s.hidden * s.out;

export interface GridPoint {
  shape: KernelShape;
  lora: Sample;
  naive?: Sample;
  loop: Sample;
  /** Measured once per token count (it does not depend on adapters or rank). */
  base: Sample;
  /** At T = 1: `tf.add(y, y)` measured right after the base matmul, an op's floor (see `BackendContenderOptions.floor`). */
  floor?: Sample;
  naiveOverLoRA?: number;
  loopOverLoRA: number;
  loraShareOfBase: number;
  bytes: number;
  flops: number;
  /** Backends with a cost model (tpu-sim): its estimated device time of one call, in µs. */
  estimatedMicros?: number;
}

export interface GridResult {
  backend: string;
  /**
   * The backend prices its calls with a cost model (`stats().estimatedMicros`, tpu-sim): its
   * wall-clock is a simulation's, so the grid's speed targets do not apply to it.
   */
  costModel: boolean;
  /** The backend compiles programs per static shape (`LoRABackend.compilesPrograms`): their count is bounded. */
  compilesPrograms: boolean;
  /** Programs compiled during the grid: the sum over points of what each point's runtime added. */
  programsCompiled: number;
  /**
   * What the backend reports after the grid. GPU backends count tfjs' program cache, which lives as
   * long as the process or page: everything compiled there so far, kernel contests included.
   */
  programsTotal: number;
  points: GridPoint[];
  /** Why some naive contenders were skipped, if any were. */
  notes: string[];
}

export interface GridOptions {
  rounds: number;
  budgetMs: number;
  /** The naive composition's gathers grow as T·R·(H + O); above this it is skipped. */
  naiveLimitBytes: number;
  onPoint?: (label: string) => void;
}

/**
 * Runs the kernel contest at every point of the grid on one backend. Browser-safe: the bench page
 * runs it for webgl and webgpu in Chromium, the CLI for the Node backends.
 */
export async function runGrid(spec: BackendSpec, shapes: readonly KernelShape[], opts: GridOptions): Promise<GridResult> {
  const bases = new Map<number, Sample>();
  let floor: Sample | undefined;
  const points: GridPoint[] = [];
  const notes = new Set<string>();
  let compiled = 0;
  let compiledAfter = 0;
  let compilesPrograms = false;
  for (const shape of shapes) {
    const cached = bases.get(shape.numTokens);
    // tf.add's floor does not depend on rank or adapters: measured once, beside the first T = 1 point.
    const floorHere = shape.numTokens === 1 && cached === undefined;
    const c = await buildBackendContenders(shape, spec, {
      base: cached === undefined,
      naiveLimitBytes: opts.naiveLimitBytes,
      floor: floorHere,
    });
    const isFloor = (m: Method) => m.id === `floor-${spec.id}`;
    try {
      const stats = () => c.runtimes[0]?.backend.stats?.().programsCompiled ?? 0;
      compilesPrograms ||= c.runtimes[0]?.backend.compilesPrograms === true;
      const compiledBefore = stats();
      // GPU warm-ups compile programs (seconds on SwiftShader): never count one as a sample.
      const measureOpts = { rounds: opts.rounds, budgetMs: opts.budgetMs, slowMs: Math.max(5000, opts.budgetMs) };
      const samples = await measure(
        c.methods.filter((m) => !isFloor(m)),
        measureOpts,
      );
      // The floor in the state the LoRA call is measured in, right after the base matmul (as in a
      // layer): in the contest's own rounds it would follow another contender, and a small op
      // measured after the 4 MB matmul read 24 µs where the same op after a small one read 11.
      if (floorHere) {
        const pair = [c.methods.find((m) => m.id === `base-${spec.id}`), c.methods.find(isFloor)].filter((m) => m !== undefined);
        floor = (await measure(pair, measureOpts)).get(`floor-${spec.id}`);
      }
      compiledAfter = stats();
      compiled += compiledAfter - compiledBefore;
      const estimatedMicros = estimateOneCall(
        c.runtimes[0]?.backend,
        c.methods.find((m) => m.id === `lora-${spec.id}`),
      );
      const get = (kind: string) => samples.get(`${kind}-${spec.id}`);
      const lora = get('lora')!;
      const base = cached ?? get('base')!;
      bases.set(shape.numTokens, base);
      const naive = get('naive');
      if (!naive) notes.add(`naive composition skipped where its gathers exceed ${(opts.naiveLimitBytes / 2 ** 20).toFixed(0)} MB`);
      points.push({
        shape,
        lora,
        naive,
        loop: get('loop')!,
        base,
        ...(shape.numTokens === 1 && floor !== undefined ? { floor } : {}),
        naiveOverLoRA: naive ? naive.median / lora.median : undefined,
        loopOverLoRA: get('loop')!.median / lora.median,
        loraShareOfBase: lora.median / base.median,
        bytes: loraBytes(shape),
        flops: loraFlops(shape),
        ...(estimatedMicros !== undefined ? { estimatedMicros } : {}),
      });
    } finally {
      c.dispose();
    }
    opts.onPoint?.(`grid ${spec.label}: ${shape.name}`);
  }
  return {
    backend: spec.label,
    costModel: points.some((p) => p.estimatedMicros !== undefined),
    compilesPrograms,
    programsCompiled: compiled,
    programsTotal: compiledAfter,
    points,
    notes: [...notes],
  };
}

/** The cost model's estimate for one more call, where the backend keeps one (`stats().estimatedMicros`). */
function estimateOneCall(backend: LoRABackend | undefined, lora: Method | undefined): number | undefined {
  const total = () => backend?.stats?.().estimatedMicros;
  const before = total();
  if (before === undefined || lora === undefined) return undefined;
  lora.run().dispose();
  return (total() as number) - before;
}
