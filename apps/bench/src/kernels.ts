import * as tf from '@tensorflow/tfjs-core';
import { initWasm } from './backends.js';
import { measure, type Sample } from './measure.js';
import { buildContenders, type KernelShape } from './methods.js';
import type { Progress } from './progress.js';

export const FULL_SHAPES: KernelShape[] = [
  { name: 'decode', numTokens: 32, numAdapters: 8, hidden: 4096, out: 4096, rank: 16, layout: 'interleaved' },
  { name: 'prefill', numTokens: 2048, numAdapters: 4, hidden: 4096, out: 4096, rank: 16, layout: 'segments' },
];

export const QUICK_SHAPES: KernelShape[] = [
  { name: 'decode', numTokens: 32, numAdapters: 8, hidden: 1024, out: 1024, rank: 16, layout: 'interleaved' },
  { name: 'prefill', numTokens: 256, numAdapters: 4, hidden: 1024, out: 1024, rank: 16, layout: 'segments' },
];

export const TINY_SHAPES: KernelShape[] = [
  { name: 'decode', numTokens: 8, numAdapters: 4, hidden: 64, out: 48, rank: 8, layout: 'interleaved' },
  { name: 'prefill', numTokens: 40, numAdapters: 2, hidden: 64, out: 48, rank: 8, layout: 'segments' },
];

export interface Ratios {
  /** How many times slower the naive tfjs composition is than our kernel. */
  naiveOverLoRA: number;
  /** How many times slower the per-adapter loop is than our kernel. */
  loopOverLoRA: number;
  /** LoRA time as a fraction of the base matmul on tfjs cpu / tfjs wasm. */
  loraShareOfBaseCpu?: number;
  loraShareOfBaseWasm?: number;
}

export interface ShapeResult {
  shape: KernelShape;
  samples: Record<string, Sample>;
  ratios: Ratios;
  /** Largest |lora - loop| relative to max |loop|: the contenders compute the same thing. */
  disagreement: number;
}

export interface KernelBenchOptions {
  shapes: KernelShape[];
  rounds: number;
  budgetMs: number;
  slowMs: number;
  wasm: boolean;
  base: boolean;
  progress?: Progress;
}

/** Steps the progress bar takes per shape (warm-ups + rounds), for sizing it. */
export const progressSteps = (o: Pick<KernelBenchOptions, 'rounds' | 'wasm' | 'base'>): number =>
  3 + (o.base ? 1 : 0) + (o.base && o.wasm ? 1 : 0) + o.rounds;

function disagreement(a: tf.Tensor, b: tf.Tensor): number {
  const av = a.dataSync();
  const bv = b.dataSync();
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < av.length; i++) {
    diff = Math.max(diff, Math.abs((av[i] as number) - (bv[i] as number)));
    scale = Math.max(scale, Math.abs(bv[i] as number));
  }
  return diff / (scale || 1);
}

export async function runKernelBench(opts: KernelBenchOptions): Promise<ShapeResult[]> {
  const wasm = opts.wasm && opts.base && (await initWasm());
  const results: ShapeResult[] = [];
  for (const shape of opts.shapes) {
    const c = await buildContenders(shape, { wasm, base: opts.base });
    try {
      const lora = c.methods.find((m) => m.id === 'lora')!.run();
      const loop = c.methods.find((m) => m.id === 'loop')!.run();
      const off = disagreement(lora, loop);
      tf.dispose([lora, loop]);
      const samples = await measure(c.methods, { ...opts, prefix: `${shape.name}: ` });
      const med = (id: string) => samples.get(id)?.median;
      const l = med('lora')!;
      const ratios: Ratios = { naiveOverLoRA: med('naive')! / l, loopOverLoRA: med('loop')! / l };
      if (med('base-cpu') !== undefined) ratios.loraShareOfBaseCpu = l / med('base-cpu')!;
      if (med('base-wasm') !== undefined) ratios.loraShareOfBaseWasm = l / med('base-wasm')!;
      results.push({ shape, samples: Object.fromEntries(samples), ratios, disagreement: off });
    } finally {
      c.dispose();
    }
  }
  return results;
}

export interface Target {
  name: string;
  shape: string;
  value: number;
  goal: string;
  met: boolean;
}

/** The speed targets of the foundation issue, evaluated on one run's ratios. */
export function kernelTargets(results: readonly ShapeResult[]): Target[] {
  const targets: Target[] = [];
  if (results.length === 0) return targets;
  for (const r of results) {
    targets.push({
      name: 'cpu kernel vs naive tfjs composition',
      shape: r.shape.name,
      value: r.ratios.naiveOverLoRA,
      goal: '≥ 50×',
      met: r.ratios.naiveOverLoRA >= 50,
    });
    targets.push({
      name: 'cpu kernel vs per-adapter loop',
      shape: r.shape.name,
      value: r.ratios.loopOverLoRA,
      goal: '≥ 8×',
      met: r.ratios.loopOverLoRA >= 8,
    });
    if (r.shape.name === 'decode' && r.ratios.loraShareOfBaseWasm !== undefined) {
      const share = r.ratios.loraShareOfBaseWasm;
      targets.push({ name: 'LoRA share of wasm base matmul', shape: r.shape.name, value: share, goal: '≤ 4 %', met: share <= 0.04 });
    }
  }
  return targets;
}
