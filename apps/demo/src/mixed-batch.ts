import { createLoRA, type LoRABackend } from '@lora/core';
import { seeded, uniform } from '@lora/llama';
import * as tf from '@tensorflow/tfjs-core';

/**
 * One packed q/k/v projection serving a batch in which each request uses a different adapter (or
 * none), checked token by token against the weights merged per adapter, W + scale·B·A, in float64.
 */

interface Adapter {
  id: string;
  rank: number;
  alpha: number;
  /** Per slice: A `[rank, H]`, B `[O_s, rank]` (PEFT layout). */
  a: Float32Array[];
  b: Float32Array[];
}

interface Request {
  adapter: string | null;
  tokens: number;
}

export interface MixedBatchResult {
  backend: string;
  requests: Array<Request & { slot: number; maxError: number; pass: boolean; firstOutputs: number[] }>;
  maxError: number;
  loraMs: number;
  baseMs: number;
}

const floats = (n: number, next: () => number, scale = 1) => uniform(next, n, scale);

export async function runMixedBatch(
  options: { backend: string | LoRABackend; hidden?: number; slices?: number[] } = { backend: 'cpu' },
): Promise<MixedBatchResult> {
  const H = options.hidden ?? 96;
  const slices = options.slices ?? [96, 24, 24]; // q, k, v with grouped-query k/v
  const O = slices.reduce((a, b) => a + b, 0);
  const maxLoraRank = 16;
  const next = seeded(2024);

  const adapters: Adapter[] = [
    { id: 'sql-expert', rank: 8, alpha: 16 },
    { id: 'poet', rank: 16, alpha: 32 },
    { id: 'translator', rank: 4, alpha: 8 },
  ].map((a) => ({ ...a, a: slices.map(() => floats(a.rank * H, next, 0.2)), b: slices.map((Os) => floats(Os * a.rank, next, 0.2)) }));
  const requests: Request[] = [
    { adapter: 'sql-expert', tokens: 7 },
    { adapter: 'poet', tokens: 3 },
    { adapter: null, tokens: 5 },
    { adapter: 'translator', tokens: 1 },
    { adapter: 'sql-expert', tokens: 2 },
  ];

  const rt = await createLoRA({ backend: options.backend, maxLoras: adapters.length, maxLoraRank });
  try {
    // Device slots: stacked A [L, R, H] and B [L, O_s, R], rank zero-padded, scaling folded into B.
    const L = adapters.length;
    const stackA = slices.map(() => new Float32Array(L * maxLoraRank * H));
    const stackB = slices.map((Os) => new Float32Array(L * Os * maxLoraRank));
    adapters.forEach((ad, slot) => {
      const scale = ad.alpha / ad.rank;
      slices.forEach((Os, s) => {
        stackA[s]!.set(ad.a[s]!, slot * maxLoraRank * H);
        for (let o = 0; o < Os; o++) {
          for (let r = 0; r < ad.rank; r++) stackB[s]![(slot * Os + o) * maxLoraRank + r] = scale * ad.b[s]![o * ad.rank + r]!;
        }
      });
    });
    const slotOf = (id: string | null) => (id === null ? -1 : adapters.findIndex((a) => a.id === id));
    const tokenLoraIndices = requests.flatMap((r) => Array<number>(r.tokens).fill(slotOf(r.adapter)));
    const T = tokenLoraIndices.length;

    const xData = floats(T * H, next);
    const wData = floats(O * H, next, 1 / Math.sqrt(H));
    const x = tf.tensor2d(xData, [T, H]);
    const w = tf.tensor2d(wData, [O, H]);
    const loraA = stackA.map((d) => tf.tensor3d(d, [L, maxLoraRank, H]));
    const loraB = stackB.map((d, s) => tf.tensor3d(d, [L, slices[s]!, maxLoraRank]));

    rt.punica.updateMetadata({ tokenLoraIndices });
    let t0 = performance.now();
    const base = tf.matMul(x, w, false, true) as tf.Tensor2D;
    base.dataSync();
    const baseMs = performance.now() - t0;
    t0 = performance.now();
    const y = rt.punica.addLoRALinear(base, x, loraA, loraB, 1, slices);
    const out = y.dataSync();
    const loraMs = performance.now() - t0;

    // Check: each token against its adapter merged into the base weight, in float64.
    const result: MixedBatchResult = { backend: rt.backend.name, requests: [], maxError: 0, loraMs, baseMs };
    let t = 0;
    for (const req of requests) {
      const slot = slotOf(req.adapter);
      const ad = slot >= 0 ? adapters[slot] : undefined;
      let maxError = 0;
      const first: number[] = [];
      for (let i = 0; i < req.tokens; i++, t++) {
        let col = 0;
        slices.forEach((Os, s) => {
          for (let o = 0; o < Os; o++, col++) {
            let ref = 0;
            let norm = 0;
            for (let h = 0; h < H; h++) {
              let merged = wData[col * H + h]!;
              if (ad) {
                let delta = 0;
                for (let r = 0; r < ad.rank; r++) delta += ad.b[s]![o * ad.rank + r]! * ad.a[s]![r * H + h]!;
                merged += (ad.alpha / ad.rank) * delta;
              }
              ref += merged * xData[t * H + h]!;
              norm += (merged * xData[t * H + h]!) ** 2;
            }
            maxError = Math.max(maxError, Math.abs(out[t * O + col]! - ref) / Math.sqrt(norm || 1));
            if (i === 0 && col < 3) first.push(out[t * O + col]!);
          }
        });
      }
      result.requests.push({ ...req, slot, maxError, pass: maxError <= 1e-4, firstOutputs: first });
      result.maxError = Math.max(result.maxError, maxError);
    }
    tf.dispose([x, w, base, y, ...loraA, ...loraB]);
    return result;
  } finally {
    rt.dispose();
  }
}
