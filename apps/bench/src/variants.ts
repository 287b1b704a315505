import { type AdapterModuleWeights, createAdapter, createLoRA, LoRALinear, type LoRARuntime } from '@lora/core';
import * as tf from '@tensorflow/tfjs-core';
import { type Method, measure, quantile, type Sample } from './measure.js';
import { type KernelShape, randomFloats, tokenSlots } from './methods.js';
import type { Progress } from './progress.js';

/**
 * What an adapter variant (#19) costs over plain LoRA, on the same data: per-request strength as
 * the same addLoRALinear with and without every request at its own strength (`tokenLoraScales`,
 * the server's `lora_scale`); a mix as the same call with every request mixing its adapter and
 * the next one (one mix lane: what it must cost is a second LoRA pass, +100 %); an activated LoRA
 * as the same call with each request's adapter starting halfway through its tokens (at prefill the
 * first half runs on the base model: a saving; at decode every token is past the start); DoRA as a whole layer forward (base matmul, LoRA term, DoRA's column
 * factors) with the same adapters with and without their magnitude vectors. Measured interleaved,
 * per round, in alternating order (neither always goes first), on one runtime each, so both see
 * the same machine state.
 */
export interface VariantResult {
  readonly variant: 'per-request strength' | 'mix of two adapters' | 'activated LoRA (from mid-chunk)' | 'DoRA (layer forward)';
  readonly engine: 'js' | 'wasm';
  readonly shape: KernelShape;
  readonly plain: Sample;
  readonly variantSample: Sample;
  /** Median over rounds of (variant time / plain time) − 1. */
  readonly cost: number;
  /** The 25th and 75th percentiles of the per-round costs. */
  readonly spread: { readonly low: number; readonly high: number };
  /** The spread contains zero: the cost (or saving) cannot be told apart from noise. */
  readonly withinNoise: boolean;
}

export interface VariantBenchOptions {
  readonly shapes: readonly KernelShape[];
  readonly engines: readonly ('js' | 'wasm')[];
  readonly rounds: number;
  readonly progress?: Progress;
}

/**
 * Steps {@link runVariantBench} reports: per pair, two warm-ups and the rounds; strength, mixes and
 * activated LoRA on every engine, DoRA on the last one only (wasm where it runs: a whole layer forward at prefill on the
 * scalar js engine's tfjs matmul takes minutes, and it is not the engine anyone serves with).
 */
export const variantSteps = (o: Pick<VariantBenchOptions, 'shapes' | 'engines' | 'rounds'>): number =>
  o.shapes.length * (3 * o.engines.length + 1) * (2 + o.rounds);

/** One variant against plain LoRA on one shape and engine: two runtimes and what each runs per round. */
interface Pair {
  readonly variant: VariantResult['variant'];
  readonly plain: () => tf.Tensor;
  readonly variantRun: () => tf.Tensor;
}

export async function runVariantBench(opts: VariantBenchOptions): Promise<VariantResult[]> {
  const results: VariantResult[] = [];
  for (const engine of opts.engines) {
    for (const shape of opts.shapes) {
      const { numTokens: T, numAdapters: L, hidden: H, out: O, rank: R } = shape;
      const make = () =>
        createLoRA({ backend: 'cpu', backendOptions: { engine }, maxLoras: L, maxLoraRank: R, maxNumTokens: Math.max(T, 16) });
      // One runtime per measured variant (sequentially: each createLoRA sets the tfjs backend up).
      const runtimes: LoRARuntime[] = [];
      for (let i = 0; i < 6; i++) runtimes.push(await make());
      const [plainRt, scaledRt, plainLayerRt, doraRt, mixRt, activatedRt] = runtimes as [
        LoRARuntime,
        LoRARuntime,
        LoRARuntime,
        LoRARuntime,
        LoRARuntime,
        LoRARuntime,
      ];
      const slots = tokenSlots(shape);
      plainRt.punica.updateMetadata({ tokenLoraIndices: slots });
      // A strength per request (one per slot here), none of them 1 or 0: every row takes the scaled path.
      const strengths = Float32Array.from(slots, (s) => 0.25 + 0.5 * ((s % 3) + 1));
      scaledRt.punica.updateMetadata({ tokenLoraIndices: slots, tokenLoraScales: strengths });
      // An activated LoRA from halfway through each request's tokens (what setBatch's firstAdapterTokens
      // makes): at prefill the first half of each segment maps to -1; a decode token is always past it.
      activatedRt.punica.updateMetadata({ tokenLoraIndices: activatedSlots(slots) });
      // Every request mixes its adapter with the next slot's at weight 0.5: one lane over every row.
      mixRt.punica.updateMetadata({
        tokenLoraIndices: slots,
        mixLanes: [{ tokenLoraIndices: slots.map((s) => (s + 1) % L), tokenLoraScales: new Float32Array(T).fill(0.5) }],
      });
      const x = tf.tensor2d(randomFloats(T * H, 1), [T, H]);
      const y = tf.tensor2d(randomFloats(T * O, 1), [T, O]);
      const a = tf.tensor3d(randomFloats(L * R * H, 1 / Math.sqrt(H)), [L, R, H]);
      const b = tf.tensor3d(randomFloats(L * O * R, 1 / Math.sqrt(R)), [L, O, R]);
      const weight = tf.tensor2d(randomFloats(O * H, Math.sqrt(3 / H)), [O, H]);
      // The same layer and adapters twice; the second runtime's adapters carry magnitude vectors.
      const layerOn = (rt: LoRARuntime, dora: boolean) => {
        const layer = new LoRALinear(rt, { module: 'm', weight });
        for (let l = 0; l < L; l++) rt.adapters.register(benchAdapter(`a${l}`, l, H, O, R, dora));
        rt.adapters.setBatch(
          Array.from(slots, (s) => `a${s}`),
          Array.from(slots, () => 1),
        );
        return layer;
      };
      const pairs: Pair[] = [
        {
          variant: 'per-request strength',
          plain: () => plainRt.punica.addLoRALinear(y, x, [a], [b], 1, [O]),
          variantRun: () => scaledRt.punica.addLoRALinear(y, x, [a], [b], 1, [O]),
        },
        {
          variant: 'activated LoRA (from mid-chunk)',
          plain: () => plainRt.punica.addLoRALinear(y, x, [a], [b], 1, [O]),
          variantRun: () => activatedRt.punica.addLoRALinear(y, x, [a], [b], 1, [O]),
        },
        {
          variant: 'mix of two adapters',
          plain: () => plainRt.punica.addLoRALinear(y, x, [a], [b], 1, [O]),
          variantRun: () => mixRt.punica.addLoRALinear(y, x, [a], [b], 1, [O]),
        },
      ];
      if (engine === opts.engines[opts.engines.length - 1]) {
        const [plainLayer, doraLayer] = [layerOn(plainLayerRt, false), layerOn(doraRt, true)];
        pairs.push({ variant: 'DoRA (layer forward)', plain: () => plainLayer.forward(x), variantRun: () => doraLayer.forward(x) });
      }
      try {
        for (const pair of pairs) results.push(await comparePair(pair, engine, shape, plainRt.backend.tfBackend, opts));
      } finally {
        tf.dispose([x, y, a, b, weight]);
        for (const rt of runtimes) rt.dispose();
      }
    }
  }
  return results;
}

/**
 * The slots an activated LoRA leaves: within each run of one request's tokens (consecutive tokens
 * of one slot: a prefill segment) the first half maps to -1; single tokens (decode) keep their slot.
 */
function activatedSlots(slots: Int32Array): Int32Array {
  const out = slots.slice();
  for (let start = 0; start < slots.length; ) {
    let end = start + 1;
    while (end < slots.length && slots[end] === slots[start]) end++;
    out.fill(-1, start, start + Math.floor((end - start) / 2));
    start = end;
  }
  return out;
}

/** A seeded bench adapter for one linear module (the same A and B with or without DoRA's magnitude). */
function benchAdapter(id: string, seed: number, H: number, O: number, R: number, dora: boolean) {
  const fill = (n: number, scale: number, k: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + k) * scale);
  const module: AdapterModuleWeights = {
    name: 'm',
    kind: 'linear',
    rank: R,
    scale: 1,
    a: fill(R * H, 1 / Math.sqrt(H), seed),
    b: fill(O * R, 1 / Math.sqrt(R), seed + 0.5),
    inFeatures: H,
    outFeatures: O,
  };
  return createAdapter(id, [dora ? { ...module, magnitude: fill(O, 0.1, seed).map((v) => 1 + v) } : module]);
}

async function comparePair(
  pair: Pair,
  engine: 'js' | 'wasm',
  shape: KernelShape,
  tfBackend: string,
  opts: VariantBenchOptions,
): Promise<VariantResult> {
  const methods: Method[] = [
    { id: 'plain', label: 'plain LoRA', tfBackend, run: pair.plain },
    { id: 'variant', label: pair.variant, tfBackend, run: pair.variantRun },
  ];
  const samples = await measure(methods, {
    rounds: opts.rounds,
    budgetMs: Number.POSITIVE_INFINITY,
    slowMs: Number.POSITIVE_INFINITY,
    progress: opts.progress,
    alternate: true,
    prefix: `variants: ${pair.variant}, engine ${engine}, ${shape.name}: `,
  });
  const plain = samples.get('plain') as Sample;
  const variantSample = samples.get('variant') as Sample;
  const perRound = variantSample.times.map((t, i) => t / (plain.times[i] as number) - 1);
  const spread = { low: quantile(perRound, 0.25), high: quantile(perRound, 0.75) };
  return {
    variant: pair.variant,
    engine,
    shape,
    plain,
    variantSample,
    cost: quantile(perRound, 0.5),
    spread,
    withinNoise: spread.low <= 0 && spread.high >= 0,
  };
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
