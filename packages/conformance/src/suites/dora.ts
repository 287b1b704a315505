import {
  type AdapterModuleWeights,
  createAdapter,
  LoRAEmbedding,
  LoRALogits,
  type LoRARuntime,
  MergedLoRALinear,
  reference,
} from '@lora/core';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { type BackendCapabilities, type BackendFactory, DEFAULT_TOLERANCE, expectAccurate, makeRuntime, readOnce } from '../harness.js';
import { Random } from '../random.js';

const [H, V, L, R] = [24, 29, 3, 8];
const SLICES = [16, 8, 8];
const MODULES = ['blk.q_proj', 'blk.k_proj', 'blk.v_proj'];
const HEAD = 'lm_head';
/** An embedding over the lm_head's table ([V, H]): DoRA per embedding dimension (PEFT `DoraEmbeddingLayer`). */
const EMBED = 'embed_tokens';

/** Who asks for what: DoRA, plain LoRA, base, a second DoRA adapter, DoRA at strength 0.4 and 0. */
const REQUESTS: readonly { id: string | null; strength: number }[] = [
  { id: 'dora-a', strength: 1 },
  { id: 'plain', strength: 1 },
  { id: null, strength: 1 },
  { id: 'dora-b', strength: 1 },
  { id: 'dora-a', strength: 0.4 },
  { id: 'dora-a', strength: 0 },
];

interface Spec {
  rank: number;
  scale: number;
  dora: boolean;
  /** Which q/k/v slices it adapts. */
  slices: readonly boolean[];
}

const SPECS: Readonly<Record<string, Spec>> = {
  'dora-a': { rank: 4, scale: 2, dora: true, slices: [true, false, true] },
  plain: { rank: 8, scale: 0.5, dora: false, slices: [true, true, true] },
  'dora-b': { rank: 8, scale: 1, dora: true, slices: [true, true, true] },
};

function module(
  rng: Random,
  name: string,
  rank: number,
  scale: number,
  inF: number,
  outF: number,
  dora: boolean,
  kind: 'linear' | 'embedding' = 'linear',
): AdapterModuleWeights {
  const weights = {
    name,
    kind,
    rank,
    scale,
    a: rng.floats(rank * inF),
    b: rng.floats(outF * rank),
    inFeatures: inF,
    outFeatures: outF,
  };
  // Trained magnitudes sit near the norms they started from (PEFT initialises m = ‖W‖): 0.5…2.5 here.
  return dora ? { ...weights, magnitude: Float32Array.from({ length: outF }, () => 1.5 + rng.next() * 2 - 1) } : weights;
}

/** Rows the mapping gives no DoRA term (no adapter, a plain adapter, strength 0) must equal `base` bit for bit. */
function expectRowsEqual(actual: Float32Array, want: Float32Array, width: number, rows: readonly number[], label: string): void {
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const b = new Uint32Array(want.buffer, want.byteOffset, want.length);
  for (const t of rows) {
    for (let c = t * width; c < (t + 1) * width; c++) {
      if (a[c] !== b[c]) expect.fail(`${label}: row ${t} must be unchanged bit for bit; column ${c - t * width} differs`);
    }
  }
}

/**
 * DoRA (PEFT `use_dora`) served in one mixed batch: packed q/k/v (with and without bias) and an
 * lm_head, two DoRA adapters, a plain one, base rows and DoRA at strengths 0.4 and 0, against the
 * float64 reference written from PEFT's `DoraLinearLayer`. Rows without a DoRA term are the same
 * bits as in a batch without the DoRA adapters; strength 0 is the base layer bit for bit.
 */
export function doraSuite(factory: BackendFactory, caps: BackendCapabilities): void {
  const tolerance = caps.tolerance ?? DEFAULT_TOLERANCE;
  const timeout = caps.timeoutMs ?? 60_000;
  describe('DoRA layers (magnitude vectors) vs float64 reference in a mixed batch', () => {
    for (const [perRequest, withBias] of [
      [2, true],
      [50, false],
    ] as const) {
      it(
        `${perRequest} tokens per request, ${withBias ? 'with' : 'without'} bias: packed q/k/v, lm_head and an embedding`,
        async () => {
          const rng = new Random(perRequest * 7 + (withBias ? 1 : 0));
          const O = SLICES.reduce((a, b) => a + b, 0);
          const [wData, bias, headW] = [rng.floats(O * H), withBias ? rng.floats(O) : undefined, rng.floats(V * H)];
          const adapters = Object.entries(SPECS).map(([id, spec]) =>
            createAdapter(id, [
              ...MODULES.flatMap((name, s) =>
                spec.slices[s] ? [module(rng, name, spec.rank, spec.scale, H, SLICES[s] as number, spec.dora)] : [],
              ),
              module(rng, HEAD, spec.rank, spec.scale, H, V, spec.dora),
              module(rng, EMBED, spec.rank, spec.scale, V, H, spec.dora, 'embedding'),
            ]),
          );
          const T = perRequest * REQUESTS.length;
          const xData = rng.floats(T * H);
          const headX = rng.floats(REQUESTS.length * H);
          const ids = Int32Array.from({ length: T }, () => rng.int(0, V - 1));
          const rt: LoRARuntime = await makeRuntime(factory, { maxLoras: L, maxLoraRank: R, maxNumTokens: 512 });
          const before = tf.memory().numTensors;
          const owned = [
            tf.tensor2d(wData, [O, H]),
            tf.tensor2d(headW, [V, H]),
            tf.tensor2d(xData, [T, H]),
            tf.tensor2d(headX, [REQUESTS.length, H]),
          ];
          const biasTensor = bias === undefined ? undefined : tf.tensor1d(bias);
          const [weight, headWeight, x, hx] = owned as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
          const qkv = new MergedLoRALinear(rt, { weight, bias: biasTensor, modules: MODULES, outputSizes: SLICES });
          const head = new LoRALogits(rt, { weight: headWeight, module: HEAD });
          const embed = new LoRAEmbedding(rt, { weight: headWeight, module: EMBED });
          const idTensor = tf.tensor1d(ids, 'int32');
          try {
            for (const adapter of adapters) rt.adapters.register(adapter);
            const run = async (ids: readonly (string | null)[]) => {
              rt.adapters.setBatch(
                ids,
                REQUESTS.map(() => perRequest),
                REQUESTS.map((r) => r.strength),
              );
              return [await readOnce(qkv.forward(x)), await readOnce(head.forward(hx)), await readOnce(embed.forward(idTensor))] as const;
            };
            const [layerOut, headOut, embedOut] = await run(REQUESTS.map((r) => r.id));
            const meta = rt.punica.meta;
            const slotModules = (names: readonly string[]) =>
              rt.adapters.slots.map((id) =>
                names.map((name) => {
                  const m = id === null ? undefined : rt.adapters.get(id)?.modules.get(name);
                  return m === undefined ? null : { a: m.a, b: m.b, rank: m.rank, scale: m.scale, magnitude: m.magnitude };
                }),
              );
            const tokenScales = Float32Array.from({ length: T }, (_, t) => REQUESTS[Math.floor(t / perRequest)]?.strength as number);
            const layerRef = reference.referenceLoRALayer({
              x: xData,
              numTokens: T,
              hidden: H,
              weight: wData,
              bias,
              outputSlices: SLICES,
              slots: slotModules(MODULES),
              tokenLoraIndices: meta.tokenLoraIndices,
              tokenScales,
            });
            expectAccurate(layerOut, layerRef, tolerance, 'q/k/v with DoRA');
            const headRef = reference.referenceLoRALayer({
              x: headX,
              numTokens: REQUESTS.length,
              hidden: H,
              weight: headW,
              outputSlices: [V],
              slots: slotModules([HEAD]),
              tokenLoraIndices: meta.sampler.tokenLoraIndices,
              tokenScales: REQUESTS.map((r) => r.strength),
            });
            expectAccurate(headOut, headRef, tolerance, 'lm_head with DoRA');
            const embedRef = reference.referenceLoRAEmbeddingLayer({
              table: headW,
              vocab: V,
              width: H,
              tokenIds: ids,
              slots: slotModules([EMBED]).map((modules) => modules[0] ?? null),
              tokenLoraIndices: meta.tokenLoraIndices,
              tokenScales,
            });
            expectAccurate(embedOut, embedRef, tolerance, 'embedding with DoRA');

            // Without the DoRA adapters: the plain and base rows must not move by a bit.
            const [plainOnly, plainHead, plainEmbed] = await run(REQUESTS.map((r) => (r.id?.startsWith('dora') ? null : r.id)));
            const untouched = REQUESTS.flatMap((r, i) => (r.id?.startsWith('dora') && r.strength !== 0 ? [] : [i]));
            const tokenRows = untouched.flatMap((i) => Array.from({ length: perRequest }, (_, k) => i * perRequest + k));
            expectRowsEqual(layerOut, plainOnly, O, tokenRows, 'q/k/v rows without a DoRA term');
            expectRowsEqual(headOut, plainHead, V, untouched, 'lm_head rows without a DoRA term');
            expectRowsEqual(embedOut, plainEmbed, H, tokenRows, 'embedding rows without a DoRA term');
          } finally {
            qkv.dispose();
            head.dispose();
            embed.dispose();
            tf.dispose([...owned, idTensor, ...(biasTensor ? [biasTensor] : [])]);
            rt.dispose();
          }
          expect(tf.memory().numTensors, 'tensors leaked').toBe(before);
        },
        timeout,
      );
    }
  });
}
