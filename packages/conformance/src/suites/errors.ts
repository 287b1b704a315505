import { createLoRA, LoRAError, type LoRAErrorCode, type LoRARuntime, reference } from '@lora/core';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BackendCapabilities,
  type BackendFactory,
  DEFAULT_TOLERANCE,
  expectAccurate,
  expectLoRAError,
  makeRuntime,
} from '../harness.js';
import { Random } from '../random.js';

const L = 3;
const R = 4;
const T = 5;
const H = 6;
const SLICES = [7, 2];
const SLOTS = [0, -1, 2, 2, 1];

interface Fixture {
  rt: LoRARuntime;
  x: tf.Tensor2D;
  y: tf.Tensor2D;
  a: tf.Tensor3D[];
  b: tf.Tensor3D[];
  data: { x: Float32Array; y: Float32Array; a: Float32Array[]; b: Float32Array[] };
  /** Zeros for a case's arguments; freed after the case, so only the call itself can leak. */
  z<T extends tf.Tensor = tf.Tensor>(shape: number[], dtype?: 'float32' | 'int32'): T;
  /** Registers another argument tensor for freeing after the case. */
  keep<T extends tf.Tensor>(t: T): T;
  made: tf.Tensor[];
}

interface ErrorCase {
  name: string;
  code: LoRAErrorCode;
  /** Words the message must contain, so it says what was expected and what was given. */
  mentions: RegExp;
  call(f: Fixture): unknown;
}

const CASES: ErrorCase[] = [
  { name: 'x of rank 3', code: 'E_SHAPE', mentions: /rank 2.*got rank 3/, call: (f) => f.rt.punica.shrink(f.z([1, T, H]), f.a, 1) },
  { name: 'x not a tensor', code: 'E_SHAPE', mentions: /tf\.Tensor.*got/, call: (f) => f.rt.punica.shrink([[1, 2]] as never, f.a, 1) },
  { name: 'x int32', code: 'E_UNSUPPORTED', mentions: /float32, got int32/, call: (f) => f.rt.punica.shrink(f.z([T, H], 'int32'), f.a, 1) },
  {
    name: 'H of A differs from x',
    code: 'E_SHAPE',
    mentions: /H \(x\.shape\[1\]\) = 6.*got shape \[3, 4, 5\]/,
    call: (f) => f.rt.punica.shrink(f.x, [f.z([L, R, H - 1])], 1),
  },
  {
    name: 'R differs between slices',
    code: 'E_SHAPE',
    mentions: /R \(as loraA\[0\]\) = 4/,
    call: (f) => f.rt.punica.shrink(f.x, [f.a[0]!, f.z([L, R - 1, H])], 1),
  },
  {
    name: 'empty slice list',
    code: 'E_SHAPE',
    mentions: /at least one slice, got an empty array/,
    call: (f) => f.rt.punica.shrink(f.x, [], 1),
  },
  {
    name: 'L differs from maxLoras',
    code: 'E_SHAPE',
    mentions: /maxLoras = 3.*got shape \[2,/,
    call: (f) => f.rt.punica.shrink(f.x, [f.z([L - 1, R, H])], 1),
  },
  {
    name: 'rank above maxLoraRank',
    code: 'E_RANK',
    mentions: /rank 5.*maxLoraRank = 4/,
    call: (f) => f.rt.punica.shrink(f.x, [f.z([L, R + 1, H])], 1),
  },
  {
    name: 'rank 0 adapter',
    code: 'E_RANK',
    mentions: /rank 0\b.*needs rank ≥ 1/,
    call: (f) => f.rt.punica.shrink(f.x, [f.z([L, 0, H])], 1),
  },
  { name: 'non-finite scale', code: 'E_CONFIG', mentions: /finite number, got NaN/, call: (f) => f.rt.punica.shrink(f.x, f.a, Number.NaN) },
  {
    name: 'T of x differs from metadata',
    code: 'E_INDEX',
    mentions: /x has 4 tokens.*numTokens = 5/,
    call: (f) => f.rt.punica.shrink(f.z([T - 1, H]), f.a, 1),
  },
  {
    name: 'T of y differs from metadata',
    code: 'E_INDEX',
    mentions: /y has 6 tokens.*numTokens = 5/,
    call: (f) => f.rt.punica.addLoRALinear(f.z([T + 1, 9]), f.x, f.a, f.b, 1, SLICES),
  },
  {
    name: 'B rank differs from shrink output',
    code: 'E_SHAPE',
    mentions: /R \(of x/,
    call: (f) => f.rt.punica.addExpand(f.y, f.z([2, T, R - 1]), f.b, SLICES),
  },
  {
    name: 'outputSlices disagree with B',
    code: 'E_SHAPE',
    mentions: /O_s \(outputSlices\[0\]\) = 6/,
    call: (f) => f.rt.punica.addLoRALinear(f.y, f.x, f.a, f.b, 1, [6, 3]),
  },
  {
    name: 'outputSlices wrong length',
    code: 'E_SHAPE',
    mentions: /must list 2 slice width/,
    call: (f) => f.rt.punica.addLoRALinear(f.y, f.x, f.a, f.b, 1, [9]),
  },
  {
    name: 'B count differs from A count',
    code: 'E_SHAPE',
    mentions: /loraB has 1 slice\(s\).*S = 2/,
    call: (f) => f.rt.punica.addLoRALinear(f.y, f.x, f.a, [f.b[0]!], 1, [7]),
  },
  {
    name: 'slices past the end of y',
    code: 'E_SHAPE',
    mentions: /need 11 columns but y has 9/,
    call: (f) => f.rt.punica.addExpand(f.y, f.z([2, T, R]), f.b, SLICES, { offsetStart: 2 }),
  },
  {
    name: 'negative offsetStart',
    code: 'E_SHAPE',
    mentions: /non-negative integer, got -1/,
    call: (f) => f.rt.punica.addExpand(f.y, f.z([2, T, R]), f.b, SLICES, { offsetStart: -1 }),
  },
  {
    name: 'slot index = maxLoras',
    code: 'E_INDEX',
    mentions: /is 3; expected an integer slot in \[0, 3\)/,
    call: (f) => f.rt.punica.updateMetadata({ tokenLoraIndices: [0, 3] }),
  },
  {
    name: 'slot index below -1',
    code: 'E_INDEX',
    mentions: /is -2; expected/,
    call: (f) => f.rt.punica.updateMetadata({ tokenLoraIndices: [-2] }),
  },
  {
    name: 'fractional slot index',
    code: 'E_INDEX',
    mentions: /is 0.5; expected an integer/,
    call: (f) => f.rt.punica.updateMetadata({ tokenLoraIndices: [0.5] }),
  },
  {
    name: 'sampler slot out of range',
    code: 'E_INDEX',
    mentions: /samplerLoraIndices\[1\] is 7/,
    call: (f) => f.rt.punica.updateMetadata({ tokenLoraIndices: [0], samplerLoraIndices: [0, 7] }),
  },
  {
    name: 'batch above maxNumTokens',
    code: 'E_CAPACITY',
    mentions: /65 tokens.*maxNumTokens = 64/,
    call: (f) => f.rt.punica.updateMetadata({ tokenLoraIndices: new Int32Array(65) }),
  },
  {
    name: 'token id outside the vocabulary',
    code: 'E_INDEX',
    mentions: /tokenIds\[2\] is 11.*\[0, V = 11\)/,
    call: (f) => f.rt.punica.addLoRAEmbedding(f.z([T, 3]), f.keep(tf.tensor1d([0, 1, 11, 2, 3], 'int32')), f.z([L, 11, R]), f.z([L, 3, R])),
  },
  {
    name: 'logits rows differ from the sampler mapping',
    code: 'E_INDEX',
    mentions: /meta\.sampler\.numTokens = 5/,
    call: (f) => f.rt.punica.addLoRALogits(f.z([2, 3]), f.z([2, H]), f.a[0]!, f.z([L, 3, R]), 1),
  },
  {
    name: 'disposed input tensor',
    code: 'E_DISPOSED',
    mentions: /already disposed/,
    call: (f) => {
      const gone = f.z<tf.Tensor2D>([T, H]);
      gone.dispose();
      return f.rt.punica.shrink(gone, f.a, 1);
    },
  },
];

export function errorSuite(factory: BackendFactory, caps: BackendCapabilities): void {
  const tolerance = caps.tolerance ?? DEFAULT_TOLERANCE;

  describe('bad calls throw LoRAError, leak nothing and leave the runtime usable', () => {
    let f: Fixture;

    beforeAll(async () => {
      const rng = new Random(99);
      const data = {
        x: rng.floats(T * H),
        y: rng.floats(T * 9),
        a: SLICES.map(() => rng.floats(L * R * H)),
        b: SLICES.map((O) => rng.floats(L * O * R)),
      };
      const rt = await makeRuntime(factory, { maxLoras: L, maxLoraRank: R, maxNumTokens: 64 });
      const made: tf.Tensor[] = [];
      const keep = <T extends tf.Tensor>(t: T): T => {
        made.push(t);
        return t;
      };
      f = {
        rt,
        made,
        keep,
        z: <T extends tf.Tensor>(shape: number[], dtype: 'float32' | 'int32' = 'float32') => keep(tf.zeros(shape, dtype)) as T,
        data,
        x: tf.tensor2d(data.x, [T, H]),
        y: tf.tensor2d(data.y, [T, 9]),
        a: data.a.map((d) => tf.tensor3d(d, [L, R, H])),
        b: data.b.map((d, s) => tf.tensor3d(d, [L, SLICES[s]!, R])),
      };
    });

    afterAll(() => {
      tf.dispose([f.x, f.y, ...f.a, ...f.b]);
      f.rt.dispose();
    });

    async function expectStillWorks(): Promise<void> {
      f.rt.punica.updateMetadata({ tokenLoraIndices: SLOTS });
      const out = f.rt.punica.addLoRALinear(f.y, f.x, f.a, f.b, 1, SLICES);
      const ref = reference.referenceLoRALinear({
        x: f.data.x,
        numTokens: T,
        hidden: H,
        loraA: f.data.a,
        rank: R,
        tokenLoraIndices: SLOTS,
        scale: 1,
        y: f.data.y,
        width: 9,
        loraB: f.data.b,
        outputSlices: SLICES,
      });
      expectAccurate((await out.data()) as Float32Array, ref, tolerance, 'valid call after a rejected one');
      out.dispose();
    }

    for (const c of CASES) {
      it.skipIf(c.name in (caps.skip ?? {}))(`${c.code}: ${c.name}`, async () => {
        f.rt.punica.updateMetadata({ tokenLoraIndices: SLOTS });
        const before = tf.memory().numTensors;
        expectLoRAError(() => c.call(f), c.code, c.mentions);
        tf.dispose(f.made.splice(0));
        expect(tf.memory().numTensors, 'tensors leaked by a rejected call').toBe(before);
        await expectStillWorks();
      });
    }

    it('E_INDEX: metadata read before updateMetadata', async () => {
      const rt = await makeRuntime(factory, { maxLoras: L, maxLoraRank: R });
      try {
        expectLoRAError(() => rt.punica.meta, 'E_INDEX', /call updateMetadata/);
        expectLoRAError(() => rt.punica.shrink(f.x, f.a, 1), 'E_INDEX', /call updateMetadata/);
      } finally {
        rt.dispose();
      }
    });

    it('writing into punica.meta (a copy for callers) changes no call: kernels index memory with their own mapping', async () => {
      f.rt.punica.updateMetadata({ tokenLoraIndices: SLOTS });
      const calls = {
        linear: () => f.rt.punica.addLoRALinear(f.y, f.x, f.a, f.b, 1, SLICES),
        shrink: () => f.rt.punica.shrink(f.x, f.a, 1),
        logits: () => f.rt.punica.addLoRALogits(f.keep(tf.slice(f.y, [0, 0], [T, 7])), f.x, f.a[0]!, f.b[0]!, 1),
      };
      const bits = async (t: tf.Tensor) => {
        const data = new Uint32Array(((await t.data()) as Float32Array).slice().buffer);
        t.dispose();
        return Array.from(data);
      };
      const before = Object.fromEntries(await Promise.all(Object.entries(calls).map(async ([k, c]) => [k, await bits(c())])));
      const meta = f.rt.punica.meta;
      // Indices far past every tensor: a kernel reading them would fault, read other memory or gather zeros.
      for (const m of [meta, meta.sampler]) {
        m.tokenLoraIndices.fill(1e8);
        m.sortedTokenIndices.fill(1e8);
      }
      for (const [k, c] of Object.entries(calls)) expect(await bits(c()), k).toEqual(before[k]);
      tf.dispose(f.made.splice(0));
    });

    it('E_DISPOSED: every call after dispose()', async () => {
      const rt = await makeRuntime(factory, { maxLoras: L, maxLoraRank: R });
      rt.punica.updateMetadata({ tokenLoraIndices: SLOTS });
      rt.dispose();
      rt.dispose();
      const before = tf.memory().numTensors;
      expectLoRAError(() => rt.punica.updateMetadata({ tokenLoraIndices: SLOTS }), 'E_DISPOSED', /disposed/);
      expectLoRAError(() => rt.punica.meta, 'E_DISPOSED', /disposed/);
      expectLoRAError(() => rt.punica.shrink(f.x, f.a, 1), 'E_DISPOSED', /disposed/);
      expectLoRAError(() => rt.punica.addLoRALinear(f.y, f.x, f.a, f.b, 1, SLICES), 'E_DISPOSED', /disposed/);
      expect(tf.memory().numTensors).toBe(before);
      await expectStillWorks();
    });

    it('E_CONFIG: bad runtime configs name the field and the value', async () => {
      const backend = await factory();
      const bad: Array<[Record<string, unknown>, RegExp]> = [
        [{ maxLoras: 0 }, /maxLoras must be an integer from 1 to 1024, got 0/],
        [{ maxLoras: 1e9 }, /maxLoras must be an integer from 1 to 1024, got 1000000000/],
        [{ maxLoras: Number.NaN }, /maxLoras .* got NaN/],
        [{ maxLoraRank: Number.POSITIVE_INFINITY }, /maxLoraRank .* got Infinity/],
        [{ maxNumTokens: 1.5 }, /maxNumTokens .* got 1.5/],
        [{ maxLoras: 4, maxCpuLoras: 2 }, /maxCpuLoras \(2\) must be at least maxLoras \(4\)/],
        [{ maxLoraRnak: 8 }, /unknown LoRAConfig key\(s\) "maxLoraRnak"/],
      ];
      for (const [extra, mentions] of bad) {
        await expect(createLoRA({ backend, ...extra })).rejects.toSatisfy(
          (e: unknown) => e instanceof LoRAError && e.code === 'E_CONFIG' && mentions.test(e.message),
        );
      }
      backend.dispose();
    });

    it('E_BACKEND: an unknown backend name lists the known ones and suggests no install', async () => {
      for (const name of ['no-such-backend', '../evil']) {
        await expect(createLoRA({ backend: name })).rejects.toSatisfy(
          (e: unknown) =>
            e instanceof LoRAError &&
            e.code === 'E_BACKEND' &&
            /unknown backend .*expected one of .*"cpu"/.test(e.message) &&
            !/npm install/.test(e.message),
        );
      }
      await expectStillWorks();
    });
  });
}
