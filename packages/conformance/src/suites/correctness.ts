import { reference } from '@lora/core';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { EMBEDDING_CASES, LINEAR_CASES, type LinearCase, LOGITS_CASES } from '../cases.js';
import {
  type BackendCapabilities,
  type BackendFactory,
  DEFAULT_TOLERANCE,
  expectAccurate,
  expectColumnsUntouched,
  expectUnchanged,
  makeRuntime,
  stacks,
  sum,
} from '../harness.js';
import { Random, slotIndices } from '../random.js';

async function checkLinearCase(factory: BackendFactory, c: LinearCase, tolerance: number): Promise<void> {
  const { numTokens: T, hidden: H, outputSlices, rank: R, maxLoras: L } = c;
  const S = outputSlices.length;
  const offsetStart = c.offsetStart ?? 0;
  const scale = c.scale ?? 1;
  const rng = new Random(c.seed);
  const slots = slotIndices(rng, c.pattern, T, L);
  const xData = rng.floats(T * H);
  const aData = outputSlices.map(() => rng.floats(L * R * H));
  const bData = outputSlices.map((O) => rng.floats(L * O * R));
  const shrunkData = rng.floats(S * T * R);
  const width = offsetStart + sum(outputSlices) + (c.extraColumns ?? 0);
  const yData = rng.floats(T * width);
  const linearWidth = sum(outputSlices) + (c.extraColumns ?? 0);
  const yLinearData = rng.floats(T * linearWidth);

  const rt = await makeRuntime(factory, { maxLoras: L, maxLoraRank: R, maxNumTokens: Math.max(T, 16) });
  const before = tf.memory().numTensors;
  const x = tf.tensor2d(xData, [T, H]);
  const loraA = stacks(
    aData,
    aData.map(() => [L, R, H]),
  );
  const loraB = stacks(
    bData,
    outputSlices.map((O) => [L, O, R]),
  );
  const shrunk = tf.tensor3d(shrunkData, [S, T, R]);
  const y = tf.tensor2d(yData, [T, width]);
  const yLinear = tf.tensor2d(yLinearData, [T, linearWidth]);
  try {
    rt.punica.updateMetadata({ tokenLoraIndices: slots });
    const common = { numTokens: T, rank: R, tokenLoraIndices: slots };

    const s = rt.punica.shrink(x, loraA, scale);
    expect(s.shape).toEqual([S, T, R]);
    expectAccurate(
      (await s.data()) as Float32Array,
      reference.referenceShrink({ ...common, x: xData, hidden: H, loraA: aData, scale }),
      tolerance,
      'shrink',
    );
    s.dispose();

    for (const addInputs of [true, false]) {
      const out = rt.punica.addExpand(y, shrunk, loraB, outputSlices, { offsetStart, addInputs });
      expect(out.shape).toEqual([T, width]);
      const actual = (await out.data()) as Float32Array;
      const ref = reference.referenceExpand({
        ...common,
        y: yData,
        width,
        x: shrunkData,
        loraB: bData,
        outputSlices,
        offsetStart,
        addInputs,
      });
      expectAccurate(actual, ref, tolerance, `addExpand(addInputs=${addInputs})`);
      expectColumnsUntouched(actual, yData, width, offsetStart, offsetStart + sum(outputSlices), `addExpand(addInputs=${addInputs})`);
      out.dispose();
    }

    const out = rt.punica.addLoRALinear(yLinear, x, loraA, loraB, scale, outputSlices);
    const actual = (await out.data()) as Float32Array;
    const ref = reference.referenceLoRALinear({
      ...common,
      x: xData,
      hidden: H,
      loraA: aData,
      scale,
      y: yLinearData,
      width: linearWidth,
      loraB: bData,
      outputSlices,
    });
    expectAccurate(actual, ref, tolerance, 'addLoRALinear');
    expectColumnsUntouched(actual, yLinearData, linearWidth, 0, sum(outputSlices), 'addLoRALinear');
    out.dispose();

    await expectUnchanged(x, xData, 'x');
    await expectUnchanged(y, yData, 'y');
    await expectUnchanged(shrunk, shrunkData, 'shrink input of addExpand');
    for (const [i, a] of loraA.entries()) await expectUnchanged(a, aData[i] as Float32Array, `loraA[${i}]`);
    for (const [i, b] of loraB.entries()) await expectUnchanged(b, bData[i] as Float32Array, `loraB[${i}]`);
  } finally {
    tf.dispose([x, ...loraA, ...loraB, shrunk, y, yLinear]);
    rt.dispose();
  }
  expect(tf.memory().numTensors, 'tensors leaked by the case').toBe(before);
}

export function correctnessSuite(factory: BackendFactory, caps: BackendCapabilities): void {
  const tolerance = caps.tolerance ?? DEFAULT_TOLERANCE;
  const skip = caps.skip ?? {};
  const timeout = caps.timeoutMs ?? 60_000;

  describe(`shrink / addExpand / addLoRALinear vs float64 reference (tolerance ${tolerance})`, () => {
    for (const c of LINEAR_CASES) {
      const title = `${c.name}: T=${c.numTokens} H=${c.hidden} O=[${c.outputSlices}] R=${c.rank} L=${c.maxLoras} ${c.pattern} seed ${c.seed}`;
      it.skipIf(c.name in skip)(title, () => checkLinearCase(factory, c, tolerance), timeout);
    }
  });

  describe('addLoRAEmbedding vs float64 reference', () => {
    for (const c of EMBEDDING_CASES) {
      it.skipIf(c.name in skip)(
        `${c.name}: T=${c.numTokens} V=${c.vocab} O=${c.width} R=${c.rank} seed ${c.seed}`,
        async () => {
          const { numTokens: T, vocab: V, width: O, rank: R, maxLoras: L } = c;
          const rng = new Random(c.seed);
          const slots = slotIndices(rng, c.pattern, T, L);
          const ids = Int32Array.from({ length: T }, () => rng.int(0, V - 1));
          const aData = rng.floats(L * V * R);
          const bData = rng.floats(L * O * R);
          const yData = rng.floats(T * O);
          const rt = await makeRuntime(factory, { maxLoras: L, maxLoraRank: R });
          const [y, tokenIds, a, b] = [
            tf.tensor2d(yData, [T, O]),
            tf.tensor1d(ids, 'int32'),
            tf.tensor3d(aData, [L, V, R]),
            tf.tensor3d(bData, [L, O, R]),
          ];
          try {
            rt.punica.updateMetadata({ tokenLoraIndices: slots });
            const out = rt.punica.addLoRAEmbedding(y, tokenIds, a, b);
            const ref = reference.referenceEmbedding({
              y: yData,
              numTokens: T,
              width: O,
              tokenIds: ids,
              loraA: aData,
              vocab: V,
              loraB: bData,
              rank: R,
              tokenLoraIndices: slots,
            });
            expectAccurate((await out.data()) as Float32Array, ref, tolerance, 'addLoRAEmbedding');
            out.dispose();
            await expectUnchanged(y, yData, 'y');
          } finally {
            tf.dispose([y, tokenIds, a, b]);
            rt.dispose();
          }
        },
        timeout,
      );
    }
  });

  describe('addLoRALogits (sampler mapping) vs float64 reference', () => {
    for (const c of LOGITS_CASES) {
      it.skipIf(c.name in skip)(
        `${c.name}: N=${c.numSamples} H=${c.hidden} V=${c.vocab} R=${c.rank} seed ${c.seed}`,
        async () => {
          const { numSamples: N, hidden: H, vocab: V, rank: R, maxLoras: L } = c;
          const rng = new Random(c.seed);
          const tokenSlots = slotIndices(rng, c.pattern, c.numTokens, L);
          const samplerSlots = slotIndices(rng, c.pattern, N, L);
          const [xData, aData, bData, yData] = [rng.floats(N * H), rng.floats(L * R * H), rng.floats(L * V * R), rng.floats(N * V)];
          const rt = await makeRuntime(factory, { maxLoras: L, maxLoraRank: R });
          const [x, a, b, y] = [
            tf.tensor2d(xData, [N, H]),
            tf.tensor3d(aData, [L, R, H]),
            tf.tensor3d(bData, [L, V, R]),
            tf.tensor2d(yData, [N, V]),
          ];
          try {
            rt.punica.updateMetadata({ tokenLoraIndices: tokenSlots, samplerLoraIndices: samplerSlots });
            const out = rt.punica.addLoRALogits(y, x, a, b, 0.5);
            const ref = reference.referenceLoRALinear({
              x: xData,
              numTokens: N,
              hidden: H,
              loraA: [aData],
              rank: R,
              tokenLoraIndices: samplerSlots,
              scale: 0.5,
              y: yData,
              width: V,
              loraB: [bData],
              outputSlices: [V],
            });
            expectAccurate((await out.data()) as Float32Array, ref, tolerance, 'addLoRALogits');
            out.dispose();
          } finally {
            tf.dispose([x, a, b, y]);
            rt.dispose();
          }
        },
        timeout,
      );
    }
  });
}
