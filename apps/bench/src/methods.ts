import { createLoRA, type LoRARuntime } from '@lora/core';
import * as tf from '@tensorflow/tfjs-core';
import type { Method } from './measure.js';

export interface KernelShape {
  name: string;
  numTokens: number;
  numAdapters: number;
  hidden: number;
  out: number;
  rank: number;
  /** 'interleaved': token t uses adapter t % n (decode); 'segments': n contiguous runs (prefill). */
  layout: 'interleaved' | 'segments';
}

/** Token t's slot: interleaved over the adapters (decode) or in contiguous runs (prefill). */
export function tokenSlots(shape: KernelShape): Int32Array {
  const { numTokens: T, numAdapters: n } = shape;
  return Int32Array.from({ length: T }, (_, t) => (shape.layout === 'interleaved' ? t % n : Math.min(n - 1, Math.floor((t * n) / T))));
}

/** n uniform values in [-scale, scale). */
export function randomFloats(n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (Math.random() * 2 - 1) * scale;
  return a;
}

export interface Contenders {
  methods: Method[];
  runtimes: LoRARuntime[];
  dispose(): void;
}

/**
 * The contenders for one shape, each holding its own copy of the data on its tfjs backend:
 *  - lora:      our addLoRALinear on engine js (scalar kernels, tfjs cpu)
 *  - lora-wasm: our addLoRALinear on engine wasm (SIMD kernels on tfjs-wasm's heap)
 *  - naive:     tf.gather of each token's A and B, then batched matMuls (what tfjs alone gives)
 *  - loop:      per adapter: gather its tokens, two matMuls, scatter back (PEFT-style)
 *  - base-cpu:  x·Wᵀ on tfjs cpu; base-wasm: x·W on tfjs wasm with W stored [H, O] (XNNPACK path)
 */
export async function buildContenders(shape: KernelShape, opts: { wasm: boolean; base: boolean }): Promise<Contenders> {
  const { numTokens: T, numAdapters: L, hidden: H, out: O, rank: R } = shape;
  const slots = tokenSlots(shape);
  const aData = randomFloats(L * R * H, 1 / Math.sqrt(H));
  const bData = randomFloats(L * O * R, 1 / Math.sqrt(R));
  const xData = randomFloats(T * H);
  const yData = randomFloats(T * O);

  const lora = (engine: 'js' | 'wasm') =>
    createLoRA({ backend: 'cpu', backendOptions: { engine }, maxLoras: L, maxLoraRank: R, maxNumTokens: Math.max(T, 16) });
  // createLoRA selects its tfjs backend; the tensors made after it live there.
  const runtime = await lora('js');
  runtime.punica.updateMetadata({ tokenLoraIndices: slots });
  const p = problemTensors(shape, { slots, aData, bData, xData, yData });
  const { x, y, a, b } = p;
  const owned: tf.Tensor[] = [...p.owned];
  const methods: Method[] = [
    {
      id: 'lora',
      label: 'addLoRALinear, engine js (tfjs cpu)',
      tfBackend: 'cpu',
      run: () => runtime.punica.addLoRALinear(y, x, [a], [b], 1, [O]),
    },
    ...baselines(shape, p, 'cpu'),
  ];

  if (opts.base) {
    const w = tf.tensor2d(randomFloats(O * H, 1 / Math.sqrt(H)), [O, H]);
    owned.push(w);
    methods.push({ id: 'base-cpu', label: 'base x·Wᵀ, tfjs cpu', tfBackend: 'cpu', run: () => tf.matMul(x, w, false, true) });
  }
  const runtimes = [runtime];
  if (opts.wasm) {
    const simd = await lora('wasm');
    simd.punica.updateMetadata({ tokenLoraIndices: slots });
    runtimes.push(simd);
    const [xw, yw, aw, bw] = [
      tf.tensor2d(xData, [T, H]),
      tf.tensor2d(yData, [T, O]),
      tf.tensor3d(aData, [L, R, H]),
      tf.tensor3d(bData, [L, O, R]),
    ];
    owned.push(xw, yw, aw, bw);
    methods.splice(1, 0, {
      id: 'lora-wasm',
      label: 'addLoRALinear, engine wasm (SIMD)',
      tfBackend: 'wasm',
      run: () => simd.punica.addLoRALinear(yw, xw, [aw], [bw], 1, [O]),
    });
    if (opts.base) {
      const wt = tf.tensor2d(randomFloats(H * O, 1 / Math.sqrt(H)), [H, O]);
      owned.push(wt);
      methods.push({ id: 'base-wasm', label: 'base x·W, tfjs wasm, W [H, O]', tfBackend: 'wasm', run: () => tf.matMul(xw, wt) });
    }
    await tf.setBackend('cpu');
  }

  return {
    methods,
    runtimes,
    dispose() {
      tf.dispose(owned);
      for (const rt of runtimes) rt.dispose();
    },
  };
}

interface ProblemData {
  slots: Int32Array;
  aData: Float32Array;
  bData: Float32Array;
  xData: Float32Array;
  yData: Float32Array;
}

interface ProblemTensors {
  x: tf.Tensor2D;
  y: tf.Tensor2D;
  a: tf.Tensor3D;
  b: tf.Tensor3D;
  idx: tf.Tensor1D;
  perAdapter: Array<{ a: tf.Tensor2D; b: tf.Tensor2D; tokens: tf.Tensor1D; scatterAt: tf.Tensor2D; count: number }>;
  owned: tf.Tensor[];
}

/** The problem's tensors on the active tfjs backend; the loop baseline keeps each adapter's weights apart, as PEFT does. */
function problemTensors(shape: KernelShape, d: ProblemData): ProblemTensors {
  const { numTokens: T, numAdapters: L, hidden: H, out: O, rank: R } = shape;
  const perAdapter = Array.from({ length: L }, (_, l) => {
    const tokens = Int32Array.from([...d.slots.keys()].filter((t) => d.slots[t] === l));
    return {
      a: tf.tensor2d(d.aData.subarray(l * R * H, (l + 1) * R * H), [R, H]),
      b: tf.tensor2d(d.bData.subarray(l * O * R, (l + 1) * O * R), [O, R]),
      tokens: tf.tensor1d(tokens, 'int32'),
      scatterAt: tf.tensor2d(tokens, [tokens.length, 1], 'int32'),
      count: tokens.length,
    };
  });
  const t = {
    x: tf.tensor2d(d.xData, [T, H]),
    y: tf.tensor2d(d.yData, [T, O]),
    a: tf.tensor3d(d.aData, [L, R, H]),
    b: tf.tensor3d(d.bData, [L, O, R]),
    idx: tf.tensor1d(d.slots, 'int32'),
    perAdapter,
  };
  return { ...t, owned: [t.x, t.y, t.a, t.b, t.idx, ...perAdapter.flatMap((p) => [p.a, p.b, p.tokens, p.scatterAt])] };
}

/** What tfjs alone offers on a backend: the naive gather + batched matMul, and the per-adapter loop. */
function baselines(
  shape: KernelShape,
  p: ProblemTensors,
  tfBackend: string,
  suffix = tfBackend === 'cpu' ? '' : `-${tfBackend}`,
): Method[] {
  const { numTokens: T, hidden: H, out: O } = shape;
  return [
    {
      id: `naive${suffix}`,
      label: `naive tfjs (gather + batched matMul)${suffix ? `, ${tfBackend}` : ''}`,
      tfBackend,
      run: () =>
        tf.tidy(() => {
          const shrunk = tf.matMul(tf.gather(p.a, p.idx), tf.reshape(p.x, [T, H, 1])); // [T, R, 1]
          const expanded = tf.matMul(tf.gather(p.b, p.idx), shrunk); // [T, O, 1]
          return tf.add(p.y, tf.reshape(expanded, [T, O]));
        }),
    },
    {
      id: `loop${suffix}`,
      label: `per-adapter loop (gather, 2 matMul, scatter)${suffix ? `, ${tfBackend}` : ''}`,
      tfBackend,
      run: () =>
        tf.tidy(() => {
          let acc: tf.Tensor = p.y;
          for (const q of p.perAdapter) {
            if (q.count === 0) continue;
            const d = tf.matMul(tf.matMul(tf.gather(p.x, q.tokens), q.a, false, true), q.b, false, true);
            acc = tf.add(acc, tf.scatterND(q.scatterAt, d, [T, O]));
          }
          return acc;
        }),
    },
  ];
}

/** A LoRA backend to measure, as `createLoRA` is asked for it; `id` suffixes its method ids. */
export interface BackendSpec {
  id: string;
  label: string;
  backend: string;
  backendOptions?: Record<string, unknown>;
}

export interface BackendContenderOptions {
  /** Measure the base matmul too (a grid measures it once per token count). */
  base?: boolean;
  /**
   * Add `tf.add(y, y)` as a method: the smallest tfjs op on the call's own output tensor. Its time
   * beyond its bytes is what any op costs at that point (dispatch, allocation, cold caches), the
   * floor under the T = 1 fixed-cost target (the grid measures it right after the base matmul).
   */
  floor?: boolean;
  /** The naive composition gathers `[T, R, H]` and `[T, O, R]`: skip it above this many bytes. */
  naiveLimitBytes?: number;
}

/** Bytes the naive composition's two gathers allocate. */
const naiveGatherBytes = (s: KernelShape): number => 4 * s.numTokens * s.rank * (s.hidden + s.out);

/**
 * The contest on one LoRA backend, every contender on the tfjs backend it computes on: our
 * addLoRALinear, the naive composition, the per-adapter loop and the base matmul (kept the way the
 * backend wants base weights: `[H, O]` for XNNPACK, `[O, H]` otherwise). On software-rendered GPUs
 * (Dawn or Chromium on SwiftShader here) only the ratios mean anything.
 */
export async function buildBackendContenders(
  shape: KernelShape,
  spec: BackendSpec,
  opts: BackendContenderOptions = {},
): Promise<Contenders> {
  const { numTokens: T, numAdapters: L, hidden: H, out: O, rank: R } = shape;
  const slots = tokenSlots(shape);
  const data = {
    slots,
    aData: randomFloats(L * R * H, 1 / Math.sqrt(H)),
    bData: randomFloats(L * O * R, 1 / Math.sqrt(R)),
    xData: randomFloats(T * H),
    yData: randomFloats(T * O),
  };
  const runtime = await createLoRA({
    backend: spec.backend,
    backendOptions: spec.backendOptions,
    maxLoras: L,
    maxLoraRank: R,
    maxNumTokens: Math.max(T, 16),
  });
  const tfBackend = runtime.backend.tfBackend;
  runtime.punica.updateMetadata({ tokenLoraIndices: slots });
  const p = problemTensors(shape, data);
  const owned = [...p.owned];
  const methods: Method[] = [
    {
      id: `lora-${spec.id}`,
      label: `addLoRALinear, ${spec.label}`,
      tfBackend,
      run: () => runtime.punica.addLoRALinear(p.y, p.x, [p.a], [p.b], 1, [O]),
    },
    ...baselines(shape, p, tfBackend, `-${spec.id}`).filter(
      (m) => !m.id.startsWith('naive') || naiveGatherBytes(shape) <= (opts.naiveLimitBytes ?? Number.POSITIVE_INFINITY),
    ),
  ];
  if (opts.floor === true) {
    methods.push({ id: `floor-${spec.id}`, label: `tf.add(y, y), ${tfBackend} (an op's floor)`, tfBackend, run: () => tf.add(p.y, p.y) });
  }
  if (opts.base !== false) {
    const inOut = runtime.backend.weightLayout === 'in-out';
    const w = inOut
      ? tf.tensor2d(randomFloats(H * O, 1 / Math.sqrt(H)), [H, O])
      : tf.tensor2d(randomFloats(O * H, 1 / Math.sqrt(H)), [O, H]);
    owned.push(w);
    methods.push({
      id: `base-${spec.id}`,
      label: inOut ? `base x·W, ${tfBackend}, W [H, O]` : `base x·Wᵀ, ${tfBackend}`,
      tfBackend,
      run: () => tf.matMul(p.x, w, false, !inOut),
    });
  }
  return {
    methods,
    runtimes: [runtime],
    dispose() {
      tf.dispose(owned);
      runtime.dispose();
    },
  };
}

/**
 * The naive composition's gathers are plain tensors: on WebGL a 512 MB one (prefill at H = 4096)
 * exceeds the 8192 × 8192 texture limit, so GPU contests leave it out above 256 MB.
 */
const GPU_NAIVE_LIMIT_BYTES = 256 * 2 ** 20;

/** The contest on a GPU backend by name (webgpu in Node; webgl and webgpu in Chromium). */
export const buildGpuContenders = (shape: KernelShape, backend = 'webgpu'): Promise<Contenders> =>
  buildBackendContenders(shape, { id: backend, label: backend, backend }, { naiveLimitBytes: GPU_NAIVE_LIMIT_BYTES });
