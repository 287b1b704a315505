import { createLoRA, type LoRARuntime } from '@lora/core';
import * as tf from '@tensorflow/tfjs-core';
import { type Method, measure, quantile, type Sample } from './measure.js';
import { type KernelShape, randomFloats, tokenSlots } from './methods.js';
import type { Progress } from './progress.js';

/**
 * What an adapter variant (#19) costs over plain LoRA, kernel by kernel: the same addLoRALinear on
 * the same data, once with plain slots and once with every request at its own strength
 * (`tokenLoraScales`, the server's `lora_scale`). Measured interleaved, per round, in alternating
 * order (neither always goes first), on one runtime each, so both see the same machine state.
 */
export interface VariantResult {
  readonly variant: 'per-request strength';
  readonly engine: 'js' | 'wasm';
  readonly shape: KernelShape;
  readonly plain: Sample;
  readonly variantSample: Sample;
  /** Median over rounds of (variant time / plain time) − 1. */
  readonly cost: number;
  /** The 25th and 75th percentiles of the per-round costs. */
  readonly spread: { readonly low: number; readonly high: number };
  /** The spread reaches zero: the cost cannot be told apart from noise. */
  readonly withinNoise: boolean;
}

export interface VariantBenchOptions {
  readonly shapes: readonly KernelShape[];
  readonly engines: readonly ('js' | 'wasm')[];
  readonly rounds: number;
  readonly progress?: Progress;
}

/** Steps {@link runVariantBench} reports: per shape and engine, two warm-ups and the rounds. */
export const variantSteps = (o: Pick<VariantBenchOptions, 'shapes' | 'engines' | 'rounds'>): number =>
  o.shapes.length * o.engines.length * (2 + o.rounds);

export async function runVariantBench(opts: VariantBenchOptions): Promise<VariantResult[]> {
  const results: VariantResult[] = [];
  for (const engine of opts.engines) {
    for (const shape of opts.shapes) {
      const { numTokens: T, numAdapters: L, hidden: H, out: O, rank: R } = shape;
      const make = () =>
        createLoRA({ backend: 'cpu', backendOptions: { engine }, maxLoras: L, maxLoraRank: R, maxNumTokens: Math.max(T, 16) });
      const runtimes: LoRARuntime[] = [await make(), await make()];
      const [plainRt, scaledRt] = runtimes as [LoRARuntime, LoRARuntime];
      const slots = tokenSlots(shape);
      plainRt.punica.updateMetadata({ tokenLoraIndices: slots });
      // A strength per request (one per slot here), none of them 1 or 0: every row takes the scaled path.
      const strengths = Float32Array.from(slots, (s) => 0.25 + 0.5 * ((s % 3) + 1));
      scaledRt.punica.updateMetadata({ tokenLoraIndices: slots, tokenLoraScales: strengths });
      const x = tf.tensor2d(randomFloats(T * H, 1), [T, H]);
      const y = tf.tensor2d(randomFloats(T * O, 1), [T, O]);
      const a = tf.tensor3d(randomFloats(L * R * H, 1 / Math.sqrt(H)), [L, R, H]);
      const b = tf.tensor3d(randomFloats(L * O * R, 1 / Math.sqrt(R)), [L, O, R]);
      const tfBackend = plainRt.backend.tfBackend;
      const methods: Method[] = [
        { id: 'plain', label: 'plain LoRA', tfBackend, run: () => plainRt.punica.addLoRALinear(y, x, [a], [b], 1, [O]) },
        { id: 'strength', label: 'per-request strength', tfBackend, run: () => scaledRt.punica.addLoRALinear(y, x, [a], [b], 1, [O]) },
      ];
      try {
        const samples = await measure(methods, {
          rounds: opts.rounds,
          budgetMs: Number.POSITIVE_INFINITY,
          slowMs: Number.POSITIVE_INFINITY,
          progress: opts.progress,
          alternate: true,
          prefix: `variants: engine ${engine}, ${shape.name}: `,
        });
        const plain = samples.get('plain') as Sample;
        const scaled = samples.get('strength') as Sample;
        const perRound = scaled.times.map((t, i) => t / (plain.times[i] as number) - 1);
        const spread = { low: quantile(perRound, 0.25), high: quantile(perRound, 0.75) };
        results.push({
          variant: 'per-request strength',
          engine,
          shape,
          plain,
          variantSample: scaled,
          cost: quantile(perRound, 0.5),
          spread,
          withinNoise: spread.low <= 0,
        });
      } finally {
        tf.dispose([x, y, a, b]);
        for (const rt of runtimes) rt.dispose();
      }
    }
  }
  return results;
}

const pct = (v: number) => `${(100 * v).toFixed(1)} %`;

/** One row per variant, engine and shape: both medians and the cost, or "within noise" with its spread. */
export function variantTable(results: readonly VariantResult[]): string {
  const rows = results.map((r) => {
    const s = r.shape;
    const cost = r.withinNoise ? 'within noise' : pct(r.cost);
    return `| ${r.variant} | cpu (engine ${r.engine}) | ${s.name}: T ${s.numTokens}, ${s.numAdapters} adapters, H ${s.hidden}, r ${s.rank} | ${r.plain.median.toFixed(3)} | ${r.variantSample.median.toFixed(3)} | ${cost} [${pct(r.spread.low)}, ${pct(r.spread.high)}] |`;
  });
  return [
    '| variant | backend | shape | plain LoRA ms | variant ms | cost over plain (median [IQR] of per-round ratios) |',
    '| --- | --- | --- | ---: | ---: | --- |',
    ...rows,
  ].join('\n');
}
