import * as tf from '@tensorflow/tfjs-core';
import { initWasm } from './backends.js';
import { gbps, loraBytes } from './grid.js';
import { type Method, measure, median, type Sample } from './measure.js';
import { buildContenders, buildGpuContenders, type KernelShape } from './methods.js';
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

interface Ratios {
  /** How many times slower the naive tfjs composition is than our kernel (engine js). */
  naiveOverLoRA: number;
  /** How many times slower the per-adapter loop is than our kernel (engine js). */
  loopOverLoRA: number;
  /** LoRA time (engine js) as a fraction of the base matmul on tfjs cpu / tfjs wasm. */
  loraShareOfBaseCpu?: number;
  loraShareOfBaseWasm?: number;
  /** Engine wasm (SIMD): speed-up over engine js, share of the wasm base matmul, bandwidth vs a copy. */
  simdOverJs?: number;
  simdShareOfBaseWasm?: number;
  simdBandwidthOfCopy?: number;
}

export interface ShapeResult {
  shape: KernelShape;
  samples: Record<string, Sample>;
  ratios: Ratios;
  /** Largest |lora - loop| relative to max |loop|: the contenders compute the same thing. */
  disagreement: number;
  /** Bytes a LoRA step must move (active A and B slots, x, y in and out) and the copy rate measured in this run. */
  bytes: number;
  copyGBps: number;
  /** The same contest on GPU backends: webgpu in Node, and webgl / webgpu in Chromium, where available. */
  gpu?: GpuContest;
  browser?: GpuContest[];
}

export interface GpuContest {
  backend: string;
  /** The shape it ran (GPU contests may run smaller shapes than the CPU one of the same name). */
  shape: KernelShape;
  samples: Record<string, Sample>;
  /** Undefined where the naive composition's gathers were too big to run (WebGL's texture limit). */
  naiveOverLoRA?: number;
  loopOverLoRA: number;
  loraShareOfBase: number;
}

/** The ratios of one GPU contest, from its samples (`lora-<backend>`, `naive-<backend>`, ...). */
export function gpuContest(backend: string, samples: Record<string, Sample>, shape: KernelShape): GpuContest {
  const med = (id: string) => samples[`${id}-${backend}`]?.median as number;
  return {
    backend,
    shape,
    samples,
    naiveOverLoRA: samples[`naive-${backend}`] ? med('naive') / med('lora') : undefined,
    loopOverLoRA: med('loop') / med('lora'),
    loraShareOfBase: med('lora') / med('base'),
  };
}

export interface KernelBenchOptions {
  shapes: KernelShape[];
  rounds: number;
  budgetMs: number;
  slowMs: number;
  wasm: boolean;
  base: boolean;
  /** Also run the contest on tfjs webgpu (Node: Dawn + SwiftShader). */
  gpu?: boolean;
  /** Shapes for the GPU contest (software-rendered GPUs are slow at full size). */
  gpuShapes?: KernelShape[];
  progress?: Progress;
}

/** Steps the progress bar takes per shape (warm-ups of the contenders and the copy + rounds), for sizing it. */
export const progressSteps = (o: Pick<KernelBenchOptions, 'rounds' | 'wasm' | 'base'>): number =>
  4 + (o.base ? 1 : 0) + (o.wasm ? 1 : 0) + (o.base && o.wasm ? 1 : 0) + o.rounds;

const COPY_FLOATS = 8 * 1024 * 1024;

/**
 * Float32Array.set over 32 MB as a contender of the kernel contest: timed in the same interleaved
 * rounds as the kernels, so the bandwidth ratio compares like with like (measured apart, after the
 * contest, the copy rate of one run swung 6.5–8 GB/s here and the ratio with it).
 */
function copyMethod(): Method {
  const src = new Float32Array(COPY_FLOATS).fill(1);
  const dst = new Float32Array(COPY_FLOATS);
  return {
    id: 'copy',
    label: 'Float32Array.set, 32 MB (the copy rate)',
    tfBackend: 'cpu',
    run: () => {
      dst.set(src);
      return tf.scalar(dst[COPY_FLOATS - 1] as number);
    },
  };
}

/** Float32Array.set over 32 MB, the machine's copy rate in GB/s (median of 5), measured on its own (the grid's roofline). */
export function copyRate(): number {
  const copy = copyMethod();
  const times: number[] = [];
  for (let i = 0; i < 6; i++) {
    const t0 = performance.now();
    copy.run().dispose();
    times.push(performance.now() - t0);
  }
  return gbps(4 * COPY_FLOATS, median(times.slice(1)));
}

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
      const samples = await measure([...c.methods, copyMethod()], { ...opts, prefix: `${shape.name}: ` });
      const med = (id: string) => samples.get(id)?.median;
      const l = med('lora')!;
      const ratios: Ratios = { naiveOverLoRA: med('naive')! / l, loopOverLoRA: med('loop')! / l };
      if (med('base-cpu') !== undefined) ratios.loraShareOfBaseCpu = l / med('base-cpu')!;
      if (med('base-wasm') !== undefined) ratios.loraShareOfBaseWasm = l / med('base-wasm')!;
      const bytes = loraBytes(shape);
      const copyGBps = gbps(4 * COPY_FLOATS, med('copy') as number);
      samples.delete('copy');
      const simd = med('lora-wasm');
      if (simd !== undefined) {
        ratios.simdOverJs = l / simd;
        ratios.simdBandwidthOfCopy = gbps(bytes, simd) / copyGBps;
        if (med('base-wasm') !== undefined) ratios.simdShareOfBaseWasm = simd / med('base-wasm')!;
      }
      results.push({ shape, samples: Object.fromEntries(samples), ratios, disagreement: off, bytes, copyGBps });
    } finally {
      c.dispose();
    }
  }
  if (opts.gpu) {
    for (const [i, shape] of (opts.gpuShapes ?? opts.shapes).entries()) {
      const g = await buildGpuContenders(shape);
      try {
        const samples = await measure(g.methods, { ...opts, rounds: Math.min(opts.rounds, 3), prefix: `${shape.name} webgpu: ` });
        const target = results[i];
        if (target) target.gpu = gpuContest('webgpu', Object.fromEntries(samples), shape);
      } finally {
        g.dispose();
      }
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
  /** How `value` reads: a ratio (×, the default), a share (%, when the goal has one), a count, a rate or a time. */
  unit?: 'count' | 'MB/s' | 'µs';
}

/** The speed targets of the backend issues (#3 for engine js, #5 for engine wasm), evaluated on one run's ratios. */
export function kernelTargets(results: readonly ShapeResult[]): Target[] {
  const targets: Target[] = [];
  const add = (name: string, shape: string, value: number | undefined, goal: string, met: (v: number) => boolean) => {
    if (value !== undefined) targets.push({ name, shape, value, goal, met: met(value) });
  };
  for (const { shape, ratios: r } of results) {
    add('engine js vs naive tfjs composition', shape.name, r.naiveOverLoRA, '≥ 50×', (v) => v >= 50);
    add('engine js vs per-adapter loop', shape.name, r.loopOverLoRA, '≥ 8×', (v) => v >= 8);
    if (shape.name === 'decode') add('engine js: share of wasm base matmul', shape.name, r.loraShareOfBaseWasm, '≤ 4 %', (v) => v <= 0.04);
    add('engine wasm: share of wasm base matmul', shape.name, r.simdShareOfBaseWasm, '≤ 2 %', (v) => v <= 0.02);
    add('engine wasm vs engine js (scalar)', shape.name, r.simdOverJs, '≥ 3×', (v) => v >= 3);
    // Issue #17: a decode call streams its adapters' A and B at ≥ 70 % of the copy rate.
    if (shape.name === 'decode') add('engine wasm: bandwidth / copy rate', shape.name, r.simdBandwidthOfCopy, '≥ 70 %', (v) => v >= 0.7);
  }
  for (const { shape, gpu, browser } of results) {
    for (const g of [...(gpu ? [gpu] : []), ...(browser ?? [])]) {
      const where = g === gpu ? `${g.backend} (node)` : `${g.backend} (chromium)`;
      const at = `${shape.name}, H = ${g.shape.hidden}`;
      add(`${where} vs naive tfjs composition`, at, g.naiveOverLoRA, '≥ 5×', (v) => v >= 5);
      add(`${where} vs per-adapter loop`, at, g.loopOverLoRA, '≥ 2×', (v) => v >= 2);
      add(`${where}: share of its base matmul`, at, g.loraShareOfBase, '≤ 10 %', (v) => v <= 0.1);
    }
  }
  return targets;
}
