import {
  type AdapterModuleWeights,
  LoRAError,
  type LoRAErrorCode,
  loadPeftAdapter,
  type MergedLoRALinear,
  reference,
  resolveConfig,
} from '@lora/core';
import * as tf from '@tensorflow/tfjs-core';
import fc from 'fast-check';
import { expectedEmbedding, expectedLinear } from './expected.js';
import type { Outcome, SlotContent } from './model.js';
import { type Hostile, HUGE_STRING, lyingLength, mutating, plain, throwing, throwingObject } from './values.js';
import { isEmbedding, LIMITS, type World, type WorldLayer } from './world.js';

/**
 * One step of a random session: an operation of the public API, often with a hostile argument.
 * Steps are plain data (fast-check generates and shrinks them); `runStep` applies one to the real
 * runtime and to the model and fails unless both agree: the same result (outputs within the
 * backend's tolerance of the float64 expectation) or a LoRAError whose code the model allows.
 */

const L = LIMITS.maxLoras;
const R = LIMITS.maxLoraRank;

/** Ids a caller may pass: the pool's, unknown ones, and values that are not ids at all. */
const ID_CHOICES: readonly unknown[] = ['a0', 'a1', 'a2', 'a3', 'a4', 'a5', 'ghost', 42, null, '', HUGE_STRING, {}];
const HOSTILE_ADAPTERS = [
  'wrong-size',
  'nan',
  'rank-too-big',
  'unknown-module',
  'kind-mismatch',
  'not-an-object',
  'huge-id',
  'throwing',
] as const;

export type Step =
  | { op: 'register'; pick: number }
  | { op: 'activate' | 'deactivate' | 'remove' | 'pin' | 'unpin'; id: number }
  | { op: 'setBatch'; requests: { id: number; count: number }[]; form: 'plain' | 'mutating' | 'lying' | 'throwing' | 'mismatch' }
  | { op: 'updateMetadata'; indices: number[]; form: 'plain' | 'mutating' | 'lying' | 'throwing' }
  | { op: 'forward'; layer: number; bad: 'none' | 'wrongH' | 'wrongT' | 'int32' | 'disposed' | 'notTensor' | 'outOfVocab' }
  | { op: 'setLoRA'; layer: number; slot: number; rank: number; scale: number; bad: 'none' | 'shape' | 'disposed' }
  | { op: 'punica'; bad: 'none' | 'mutatingA' | 'mutatingSlices' | 'disposedY' | 'lyingSlices' }
  | { op: 'load'; kind: 'valid' | 'mutated' | 'hostileConfig'; pick: number; at: number; byte: number }
  | { op: 'config'; key: string; value: unknown };

const COUNTS: readonly unknown[] = [1, 2, 3, 5, 0, -1, 1.5, Number.NaN, '2', 1e9];

export const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant('register' as const), pick: fc.nat({ max: 6 + HOSTILE_ADAPTERS.length - 1 }) }) },
  {
    weight: 8,
    arbitrary: fc.record({
      op: fc.constantFrom('activate' as const, 'deactivate' as const, 'remove' as const, 'pin' as const, 'unpin' as const),
      id: fc.nat({ max: ID_CHOICES.length - 1 }),
    }),
  },
  {
    weight: 8,
    arbitrary: fc.record({
      op: fc.constant('setBatch' as const),
      requests: fc.array(
        fc.record({
          // Mostly pool ids (and null = base model) so that batches are often valid.
          id: fc.oneof(
            { weight: 8, arbitrary: fc.nat({ max: 5 }) },
            { weight: 2, arbitrary: fc.constant(8) },
            { weight: 1, arbitrary: fc.nat({ max: ID_CHOICES.length - 1 }) },
          ),
          count: fc.oneof({ weight: 9, arbitrary: fc.nat({ max: 3 }) }, { weight: 1, arbitrary: fc.nat({ max: COUNTS.length - 1 }) }),
        }),
        { maxLength: 5 },
      ),
      form: fc.constantFrom(
        'plain' as const,
        'plain' as const,
        'plain' as const,
        'mutating' as const,
        'lying' as const,
        'throwing' as const,
        'mismatch' as const,
      ),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('updateMetadata' as const),
      indices: fc.array(
        fc.oneof(
          { weight: 9, arbitrary: fc.integer({ min: -1, max: L - 1 }) },
          { weight: 1, arbitrary: fc.constantFrom(L, 1.5, Number.NaN, -2) },
        ),
        {
          maxLength: 8,
        },
      ),
      form: fc.constantFrom('plain' as const, 'plain' as const, 'mutating' as const, 'lying' as const, 'throwing' as const),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant('forward' as const),
      layer: fc.nat({ max: 5 }),
      bad: fc.oneof(
        { weight: 6, arbitrary: fc.constant('none' as const) },
        {
          weight: 1,
          arbitrary: fc.constantFrom(
            'wrongH' as const,
            'wrongT' as const,
            'int32' as const,
            'disposed' as const,
            'notTensor' as const,
            'outOfVocab' as const,
          ),
        },
      ),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('setLoRA' as const),
      layer: fc.nat({ max: 5 }),
      slot: fc.oneof({ weight: 6, arbitrary: fc.nat({ max: L - 1 }) }, { weight: 1, arbitrary: fc.constantFrom(-1, L, 1.5) }),
      rank: fc.integer({ min: 1, max: R + 1 }),
      scale: fc.oneof(
        { weight: 6, arbitrary: fc.double({ min: -2, max: 2, noNaN: true }) },
        { weight: 1, arbitrary: fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY) },
      ),
      bad: fc.constantFrom('none' as const, 'none' as const, 'none' as const, 'shape' as const, 'disposed' as const),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('punica' as const),
      bad: fc.constantFrom(
        'none' as const,
        'none' as const,
        'mutatingA' as const,
        'mutatingSlices' as const,
        'disposedY' as const,
        'lyingSlices' as const,
      ),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('load' as const),
      kind: fc.constantFrom('valid' as const, 'mutated' as const, 'hostileConfig' as const),
      pick: fc.nat({ max: 5 }),
      at: fc.nat(),
      byte: fc.nat({ max: 255 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('config' as const),
      key: fc.constantFrom(
        'maxLoras',
        'maxLoraRank',
        'maxCpuLoras',
        'maxCpuLoraBytes',
        'maxNumTokens',
        'maxSlotMemory',
        'backendOptions',
        'maxLoraRnak',
      ),
      value: fc.constantFrom(0, 1, 4, 1e9, -3, 2.5, Number.NaN, 'x', null, [], {}),
    }),
  },
);

type Attempt<T> = { value: T; error?: undefined } | { error: LoRAError };

/** Runs `call`, returning its value or the LoRAError it threw; anything else thrown fails the run. */
function attempt<T>(call: () => T): Attempt<T> {
  try {
    return { value: call() };
  } catch (err) {
    if (err instanceof LoRAError) return { error: err };
    throw new Error(`a non-LoRAError escaped: ${(err as Error)?.stack ?? err}`);
  }
}

function agree(label: string, got: Attempt<unknown>, outcome: Outcome): boolean {
  if (outcome.ok) {
    if (got.error) throw new Error(`${label}: the model accepts it, the runtime refused with ${got.error.message}`);
    return true;
  }
  if (!got.error) throw new Error(`${label}: the model refuses it with ${[...outcome.codes].join('/')}, the runtime accepted it`);
  if (!outcome.codes.has(got.error.code)) {
    throw new Error(`${label}: expected ${[...outcome.codes].join('/')}, the runtime threw ${got.error.message}`);
  }
  return false;
}

function refusal(...codes: LoRAErrorCode[]): Outcome {
  return { ok: false, codes: new Set(codes) };
}

/** A hand-built adapter (not through createAdapter) that the runtime must refuse at register. */
function hostileAdapter(world: World, kind: (typeof HOSTILE_ADAPTERS)[number]): { adapter: unknown; codes: LoRAErrorCode[] } {
  const q = world.pool[0]?.modules.get('model.layers.0.self_attn.q_proj') ?? [...(world.pool[0]?.modules.values() ?? [])][0];
  const m = q as AdapterModuleWeights;
  const one = (mod: Partial<AdapterModuleWeights>, id = 'evil') => ({
    id,
    rank: 1,
    modules: new Map([[mod.name ?? m.name, { ...m, ...mod }]]),
  });
  switch (kind) {
    case 'wrong-size':
      return { adapter: one({ a: m.a.subarray(1) }), codes: ['E_SHAPE'] };
    case 'nan':
      return { adapter: one({ b: Float32Array.from(m.b, (v, i) => (i === 0 ? Number.NaN : v)) }), codes: ['E_FORMAT'] };
    case 'rank-too-big': {
      const rank = R * 2;
      return {
        adapter: one({ rank, a: new Float32Array(rank * m.inFeatures), b: new Float32Array(m.outFeatures * rank) }),
        codes: ['E_RANK'],
      };
    }
    case 'unknown-module':
      return { adapter: one({ name: 'model.layers.9.self_attn.q_proj' }), codes: ['E_SHAPE'] };
    case 'kind-mismatch':
      return { adapter: one({ kind: 'embedding' }), codes: ['E_SHAPE'] };
    case 'not-an-object':
      return { adapter: 42, codes: ['E_CONFIG'] };
    case 'huge-id':
      return { adapter: one({}, HUGE_STRING), codes: ['E_CONFIG'] };
    case 'throwing':
      return { adapter: throwingObject(), codes: ['E_CONFIG'] };
  }
}

function arrayForm<T>(form: string, first: T[], later: T[]): Hostile<T[]> {
  if (form === 'mutating') return mutating(first, later);
  if (form === 'lying') return lyingLength(1e9);
  if (form === 'throwing') return throwing(Math.max(1, first.length));
  return plain(first);
}

export async function runStep(world: World, step: Step, tolerance: number): Promise<void> {
  const { rt, model } = world;
  const label = JSON.stringify(step, (_, v) => (typeof v === 'string' && v.length > 40 ? `${v.slice(0, 20)}…` : v));
  switch (step.op) {
    case 'register': {
      if (step.pick < world.pool.length) {
        const adapter = world.pool[step.pick]!;
        const outcome = model.register(adapter);
        agree(
          label,
          attempt(() => rt.adapters.register(adapter)),
          outcome,
        );
      } else {
        const { adapter, codes } = hostileAdapter(world, HOSTILE_ADAPTERS[step.pick - world.pool.length]!);
        agree(
          label,
          attempt(() => rt.adapters.register(adapter as never)),
          refusal(...codes),
        );
      }
      return;
    }
    case 'activate':
    case 'deactivate':
    case 'remove':
    case 'pin':
    case 'unpin': {
      const id = ID_CHOICES[step.id];
      const outcome = model[step.op](id);
      agree(
        label,
        attempt(() => rt.adapters[step.op](id as string)),
        outcome,
      );
      return;
    }
    case 'setBatch': {
      const ids = step.requests.map((r) => (r.id === 8 ? null : ID_CHOICES[r.id]));
      const counts = step.requests.map((r) => COUNTS[r.count]);
      // A mutating array shows valid-looking values first and others later (an unregistered id, a huge count).
      const idArg = arrayForm(
        step.form,
        ids,
        ids.map(() => 'ghost'),
      );
      const countArg =
        step.form === 'mismatch'
          ? plain([...counts, 1])
          : arrayForm(
              step.form === 'mutating' ? 'mutating' : 'plain',
              counts,
              counts.map(() => 1e9),
            );
      const outcome = model.setBatch(idArg.seen, countArg.seen, idArg.tooLong || countArg.tooLong);
      agree(
        label,
        attempt(() => rt.adapters.setBatch(idArg.value as never, countArg.value as never)),
        outcome,
      );
      return;
    }
    case 'updateMetadata': {
      const arg = arrayForm(
        step.form,
        step.indices,
        step.indices.map(() => L + 4),
      );
      const outcome = model.updateMetadata(arg.seen, arg.tooLong);
      agree(
        label,
        attempt(() => rt.punica.updateMetadata({ tokenLoraIndices: arg.value as number[] })),
        outcome,
      );
      return;
    }
    case 'forward':
      return forward(world, step, label, tolerance);
    case 'setLoRA':
      return setLoRA(world, step, label);
    case 'punica':
      return punica(world, step, label, tolerance);
    case 'load':
      return load(world, step, label);
    case 'config': {
      const got = attempt(() => resolveConfig({ backend: 'cpu', [step.key]: step.value } as never));
      const v = step.value;
      const limit = {
        maxLoras: 1024,
        maxLoraRank: 1024,
        maxCpuLoras: 65536,
        maxCpuLoraBytes: 2 ** 45,
        maxNumTokens: 1 << 20,
        maxSlotMemory: 2 ** 45,
      }[step.key];
      let ok: boolean;
      if (step.key === 'maxLoraRnak') ok = false;
      else if (step.key === 'backendOptions') ok = v === null || (typeof v === 'object' && !Array.isArray(v));
      else ok = typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= (limit as number) && !(step.key === 'maxCpuLoras' && v < 4);
      agree(label, got, ok ? { ok: true } : refusal('E_CONFIG'));
      return;
    }
  }
}

function rowSlots(world: World, kind: WorldLayer['kind']): number[] | undefined {
  const meta = world.model.meta;
  return meta === undefined ? undefined : kind === 'logits' ? meta.sampler : meta.tokens;
}

async function forward(world: World, step: Extract<Step, { op: 'forward' }>, label: string, tolerance: number): Promise<void> {
  const w = world.layers[step.layer] as WorldLayer;
  const slots = rowSlots(world, w.kind);
  const rows = slots?.length ?? 1;
  const made: tf.Tensor[] = [];
  const keep = <T extends tf.Tensor>(t: T): T => {
    made.push(t);
    return t;
  };
  try {
    let expected: Outcome = slots === undefined ? refusal('E_INDEX') : { ok: true };
    const hostRead = ['cpu', 'wasm'].includes(tf.getBackend());
    if (isEmbedding(w.layer)) {
      const V = w.inFeatures;
      const ids = Int32Array.from({ length: rows }, () => world.rng.int(0, V - 1));
      let arg: unknown = keep(tf.tensor1d(ids, 'int32'));
      if (step.bad === 'wrongT') arg = keep(tf.tensor1d(new Int32Array(rows + 1), 'int32'));
      if (step.bad === 'int32' || step.bad === 'wrongH') arg = keep(tf.tensor2d(new Float32Array(rows), [rows, 1]));
      if (step.bad === 'disposed') {
        (arg as tf.Tensor).dispose();
      }
      if (step.bad === 'notTensor') arg = Array.from(ids);
      if (step.bad === 'outOfVocab') {
        // Ids are range-checked where reading them back is free (host-memory backends); a GPU gather reads a zero row.
        if (!hostRead || rows === 0) return;
        ids[0] = V + 3;
        arg = keep(tf.tensor1d(ids, 'int32'));
      }
      const codes: Record<string, LoRAErrorCode[]> = {
        wrongT: ['E_INDEX'],
        int32: ['E_SHAPE'],
        wrongH: ['E_SHAPE'],
        disposed: ['E_DISPOSED'],
        notTensor: ['E_SHAPE'],
        outOfVocab: ['E_INDEX'],
      };
      if (step.bad !== 'none')
        expected = refusal(...(slots === undefined ? ['E_INDEX' as const] : []), ...(codes[step.bad] as LoRAErrorCode[]));
      const got = attempt(() => (w.layer as { forward(ids: tf.Tensor1D): tf.Tensor2D }).forward(arg as tf.Tensor1D));
      if (agree(label, got, expected) && 'value' in got) {
        const out = keep(got.value);
        const ref = expectedEmbedding({
          ids,
          table: w.weight,
          vocab: V,
          dim: w.outputs[0] as number,
          contents: world.model.content[step.layer] as SlotContent[],
          maxLoraRank: R,
          rowSlots: slots as number[],
        });
        check(label, (await out.data()) as Float32Array, ref, tolerance);
      }
      return;
    }
    const H = w.inFeatures;
    const data = world.rng.floats(rows * H);
    let arg: unknown = keep(tf.tensor2d(data, [rows, H]));
    const badCodes: Record<string, LoRAErrorCode> = {
      wrongH: 'E_SHAPE',
      wrongT: 'E_INDEX',
      int32: 'E_UNSUPPORTED',
      disposed: 'E_DISPOSED',
      notTensor: 'E_SHAPE',
      outOfVocab: 'E_SHAPE',
    };
    if (step.bad === 'wrongH') arg = keep(tf.tensor2d(new Float32Array(rows * (H + 1)), [rows, H + 1]));
    if (step.bad === 'wrongT') arg = keep(tf.tensor2d(new Float32Array((rows + 1) * H), [rows + 1, H]));
    if (step.bad === 'int32') arg = keep(tf.tensor2d(new Int32Array(rows * H), [rows, H], 'int32'));
    if (step.bad === 'disposed') (arg as tf.Tensor).dispose();
    if (step.bad === 'notTensor' || step.bad === 'outOfVocab') arg = [[1, 2]];
    if (step.bad !== 'none') expected = refusal(...(slots === undefined ? ['E_INDEX' as const] : []), badCodes[step.bad] as LoRAErrorCode);
    const got = attempt(() => (w.layer as { forward(x: tf.Tensor2D): tf.Tensor2D }).forward(arg as tf.Tensor2D));
    if (agree(label, got, expected) && 'value' in got) {
      const out = keep(got.value);
      const ref = expectedLinear({
        x: data,
        rows,
        weight: w.weight,
        shape: { inFeatures: H, outputs: w.outputs },
        contents: world.model.content[step.layer] as SlotContent[],
        maxLoraRank: R,
        rowSlots: slots as number[],
      });
      check(label, (await out.data()) as Float32Array, ref, tolerance);
    }
  } finally {
    tf.dispose(made.filter((t) => !t.isDisposed));
  }
}

function check(label: string, actual: Float32Array, ref: ReturnType<typeof expectedLinear>, tolerance: number): void {
  const err = reference.maxRelativeRowError(actual, ref);
  if (!(err <= tolerance)) throw new Error(`${label}: max row error ${err} against the float64 model exceeds ${tolerance}`);
}

function setLoRA(world: World, step: Extract<Step, { op: 'setLoRA' }>, label: string): void {
  const w = world.layers[step.layer] as WorldLayer;
  const rank = step.rank;
  const made: tf.Tensor[] = [];
  try {
    const slices = w.outputs.map((out) => ({ a: world.rng.floats(rank * w.inFeatures), b: world.rng.floats(out * rank) }));
    const codes = new Set<LoRAErrorCode>();
    if (!(Number.isInteger(step.slot) && step.slot >= 0 && step.slot < L)) codes.add('E_INDEX');
    if (!Number.isFinite(step.scale)) codes.add('E_CONFIG');
    if (rank > R) codes.add('E_RANK');
    let a0: Float32Array | tf.Tensor2D = slices[0]!.a;
    if (step.bad === 'shape') {
      a0 = slices[0]!.a.subarray(1);
      codes.add('E_SHAPE');
    }
    if (step.bad === 'disposed') {
      const t = tf.tensor2d(slices[0]!.a, [rank, w.inFeatures]);
      t.dispose();
      a0 = t;
      codes.add('E_DISPOSED');
    }
    const as = [a0, ...slices.slice(1).map((s) => s.a)];
    const bs = slices.map((s) => s.b);
    const call = () => {
      if (w.layer.modules.length > 1) (w.layer as MergedLoRALinear).setLoRA(step.slot, as, bs, step.scale);
      else (w.layer as { setLoRA(slot: number, a: unknown, b: unknown, scale: number): void }).setLoRA(step.slot, as[0], bs[0], step.scale);
    };
    const outcome: Outcome = codes.size > 0 ? { ok: false, codes } : { ok: true };
    if (agree(label, attempt(call), outcome)) {
      world.model.setLayerSlot(
        step.layer,
        step.slot,
        slices.map((s) => ({ a: s.a, b: s.b, rank, scale: step.scale })),
      );
    }
  } finally {
    tf.dispose(made);
  }
}

async function punica(world: World, step: Extract<Step, { op: 'punica' }>, label: string, tolerance: number): Promise<void> {
  const w = world.layers[1] as WorldLayer; // the packed q/k/v layer: three slices
  const layer = w.layer as MergedLoRALinear;
  const slots = rowSlots(world, 'linear');
  const rows = slots?.length ?? 1;
  const H = w.inFeatures;
  const O = w.outputs.reduce((n, o) => n + o, 0);
  const xData = world.rng.floats(rows * H);
  const yData = world.rng.floats(rows * O);
  const x = tf.tensor2d(xData, [rows, H]);
  const y = tf.tensor2d(yData, [rows, O]);
  const made: tf.Tensor[] = [x, y];
  try {
    const a = layer.loraA;
    const b = layer.loraB;
    let aArg: unknown = a;
    let slicesArg: unknown = [...w.outputs];
    const codes = new Set<LoRAErrorCode>();
    if (slots === undefined) codes.add('E_INDEX');
    if (step.bad === 'mutatingA') {
      // The first read of each slice is the real stack, later reads a wrong-shaped tensor.
      const wrong = tf.zeros([L, R, H + 1]) as tf.Tensor3D;
      made.push(wrong);
      aArg = mutating(
        a,
        a.map(() => wrong),
      ).value;
    }
    if (step.bad === 'mutatingSlices')
      slicesArg = mutating(
        [...w.outputs],
        w.outputs.map(() => 1000),
      ).value;
    if (step.bad === 'lyingSlices') {
      slicesArg = lyingLength(1e9).value;
      codes.add('E_CAPACITY');
      codes.add('E_SHAPE');
    }
    if (step.bad === 'disposedY') {
      y.dispose();
      codes.add('E_DISPOSED');
    }
    // The layer's stacks go with its slot ranks and B layout (rows at each slot's rank where the backend reads that).
    const got = attempt(() =>
      world.rt.punica.addLoRALinear(y, x, aArg as tf.Tensor3D[], b, 1, slicesArg as number[], layer.slotRanks, { bLayout: layer.bLayout }),
    );
    if (agree(label, got, codes.size > 0 ? { ok: false, codes } : { ok: true }) && 'value' in got) {
      made.push(got.value);
      const ref = expectedLinear({
        x: xData,
        rows,
        weight: new Float32Array(O * H),
        shape: { inFeatures: H, outputs: w.outputs },
        contents: world.model.content[1] as SlotContent[],
        maxLoraRank: R,
        rowSlots: slots as number[],
      });
      // expectedLinear's base is zero here: add y (the call's base) in float64.
      for (let i = 0; i < ref.out.length; i++) ref.out[i] = (ref.out[i] as number) + (yData[i] as number);
      for (let r = 0; r < rows; r++) {
        let sq = (ref.rowScale[r] as number) ** 2;
        for (let c = 0; c < O; c++) sq += (yData[r * O + c] as number) ** 2;
        ref.rowScale[r] = Math.sqrt(sq);
      }
      check(label, (await got.value.data()) as Float32Array, ref, tolerance);
    }
  } finally {
    tf.dispose(made.filter((t) => !t.isDisposed));
  }
}

function load(world: World, step: Extract<Step, { op: 'load' }>, label: string): void {
  const files = world.files[step.pick] as { config: string; safetensors: Uint8Array };
  if (step.kind === 'valid') {
    const got = attempt(() => loadPeftAdapter({ id: 'loaded', ...files }));
    if (got.error) throw new Error(`${label}: a valid adapter was refused: ${got.error.message}`);
    const source = world.pool[step.pick]!;
    for (const [name, m] of source.modules) {
      const l = got.value.modules.get(name);
      if (!l || l.rank !== m.rank || l.scale !== m.scale || !l.a.every((v, i) => v === m.a[i]) || !l.b.every((v, i) => v === m.b[i])) {
        throw new Error(`${label}: module ${name} loaded differently`);
      }
    }
    return;
  }
  if (step.kind === 'mutated') {
    const bytes = files.safetensors.slice();
    bytes[step.at % bytes.length] = step.byte;
    const got = attempt(() => loadPeftAdapter({ id: 'mutated', config: files.config, safetensors: bytes }));
    if (got.error && !['E_FORMAT', 'E_UNSUPPORTED', 'E_SHAPE', 'E_RANK'].includes(got.error.code)) {
      throw new Error(`${label}: unexpected ${got.error.message}`);
    }
    return;
  }
  const configs: Array<[Record<string, unknown>, LoRAErrorCode | readonly LoRAErrorCode[]]> = [
    [{ r: 1, target_modules: `(${'a|'.repeat(30)}a)*c` }, 'E_FORMAT'],
    [{ r: 1, target_modules: '(?=q).*' }, 'E_UNSUPPORTED'],
    [{ r: 64, rank_pattern: { '(x+x+)+y': 2 } }, 'E_FORMAT'],
    [{ r: 1, alora_invocation_tokens: 'hi' }, 'E_FORMAT'],
    // DoRA is served, but these weights have no magnitude vectors for it (E_FORMAT), or the first
    // module the file lists is an embedding, which cannot be DoRA (E_UNSUPPORTED).
    [{ r: 1, use_dora: true }, ['E_FORMAT', 'E_UNSUPPORTED']],
    [{ r: 1, unknown_switch: 'on' }, 'E_UNSUPPORTED'],
  ];
  const [config, code] = configs[step.at % configs.length]!;
  const got = attempt(() => loadPeftAdapter({ id: 'hostile', config, safetensors: files.safetensors }));
  // A regex that matches nothing leaves weights "not adapted by target_modules": E_FORMAT; the others name their field.
  const codes: readonly LoRAErrorCode[] = typeof code === 'string' ? [code] : code;
  if (got.error === undefined || !codes.includes(got.error.code))
    throw new Error(`${label}: expected ${codes.join(' or ')}, got ${got.error ? got.error.message : 'an adapter'}`);
}
