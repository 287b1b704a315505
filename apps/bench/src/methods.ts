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

export function tokenSlots(shape: KernelShape): Int32Array {
  const { numTokens: T, numAdapters: n } = shape;
  return Int32Array.from({ length: T }, (_, t) => (shape.layout === 'interleaved' ? t % n : Math.min(n - 1, Math.floor((t * n) / T))));
}

function randomFloats(n: number, scale = 1): Float32Array {
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
  const x = tf.tensor2d(xData, [T, H]);
  const y = tf.tensor2d(yData, [T, O]);
  const a = tf.tensor3d(aData, [L, R, H]);
  const b = tf.tensor3d(bData, [L, O, R]);
  const idx = tf.tensor1d(slots, 'int32');
  // The loop baseline keeps each adapter's weights as separate tensors, as a PEFT model does.
  const perAdapter = Array.from({ length: L }, (_, l) => {
    const tokens = Int32Array.from([...slots.keys()].filter((t) => slots[t] === l));
    return {
      a: tf.tensor2d(aData.subarray(l * R * H, (l + 1) * R * H), [R, H]),
      b: tf.tensor2d(bData.subarray(l * O * R, (l + 1) * O * R), [O, R]),
      tokens: tf.tensor1d(tokens, 'int32'),
      scatterAt: tf.tensor2d(tokens, [tokens.length, 1], 'int32'),
      count: tokens.length,
    };
  });
  const owned: tf.Tensor[] = [x, y, a, b, idx, ...perAdapter.flatMap((p) => [p.a, p.b, p.tokens, p.scatterAt])];

  const methods: Method[] = [
    {
      id: 'lora',
      label: 'addLoRALinear, engine js (tfjs cpu)',
      tfBackend: 'cpu',
      run: () => runtime.punica.addLoRALinear(y, x, [a], [b], 1, [O]),
    },
    {
      id: 'naive',
      label: 'naive tfjs (gather + batched matMul)',
      tfBackend: 'cpu',
      run: () =>
        tf.tidy(() => {
          const shrunk = tf.matMul(tf.gather(a, idx), tf.reshape(x, [T, H, 1])); // [T, R, 1]
          const expanded = tf.matMul(tf.gather(b, idx), shrunk); // [T, O, 1]
          return tf.add(y, tf.reshape(expanded, [T, O]));
        }),
    },
    {
      id: 'loop',
      label: 'per-adapter loop (gather, 2 matMul, scatter)',
      tfBackend: 'cpu',
      run: () =>
        tf.tidy(() => {
          let acc: tf.Tensor = y;
          for (const p of perAdapter) {
            if (p.count === 0) continue;
            const d = tf.matMul(tf.matMul(tf.gather(x, p.tokens), p.a, false, true), p.b, false, true);
            acc = tf.add(acc, tf.scatterND(p.scatterAt, d, [T, O]));
          }
          return acc;
        }),
    },
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
