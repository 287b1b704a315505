import type { Tensor, Tensor1D, Tensor2D, Tensor3D } from '@tensorflow/tfjs-core';
import type { BLayout } from './calls.js';
import { describeValue, LoRAError } from './errors.js';

/**
 * Argument checks for every public PunicaWrapper call. They run before any tensor is allocated, so
 * a rejected call leaves nothing behind, and backends never repeat them.
 */

export interface CheckContext {
  readonly maxLoras: number;
  readonly maxLoraRank: number;
}

const shapeOf = (t: Tensor): string => `[${t.shape.join(', ')}]`;

/**
 * A caller's array copied once, before anything reads it: checks and kernels then see the same
 * values even if the caller's array (a Proxy, an array with getters, one another task mutates)
 * would give different ones on a second read. Its length is checked before copying, so a
 * hostile `length` cannot make us allocate; a throwing getter becomes a LoRAError.
 */
export function snapshotArray(
  value: unknown,
  name: string,
  options: { code: 'E_SHAPE' | 'E_INDEX'; maxLength: number; expected: string; limitName?: string; unit?: string },
): unknown[] {
  if (!Array.isArray(value) && !(ArrayBuffer.isView(value) && !(value instanceof DataView))) {
    throw new LoRAError(options.code, `${name} must be ${options.expected}, got ${describeValue(value)}`);
  }
  let length: unknown;
  try {
    length = (value as ArrayLike<unknown>).length;
  } catch (err) {
    throw new LoRAError(options.code, `${name} could not be read: ${describeValue((err as Error)?.message)}`);
  }
  if (typeof length !== 'number' || !Number.isSafeInteger(length) || length < 0) {
    throw new LoRAError(options.code, `${name} has an invalid length ${describeValue(length)}`);
  }
  if (length > options.maxLength) {
    const limit = options.limitName === undefined ? `${options.maxLength}` : `${options.limitName} = ${options.maxLength}`;
    throw new LoRAError('E_CAPACITY', `${name} has ${length} ${options.unit ?? 'entries'}; this runtime takes at most ${limit}`);
  }
  try {
    return Array.prototype.slice.call(value, 0, length);
  } catch (err) {
    throw new LoRAError(options.code, `${name} could not be read: ${describeValue((err as Error)?.message)}`);
  }
}

/** Dimensions a layout such as `[L, R, H]` names (its commas + 1), without allocating. */
function layoutRank(layout: string): number {
  let rank = 1;
  for (let i = 0; i < layout.length; i++) if (layout.charCodeAt(i) === 44) rank++;
  return rank;
}

/**
 * The common case of {@link checkStack}, answered without building a name or a message (a layer
 * call checks six stacks: at decode their labels cost more than the comparisons): a live float32
 * `[maxLoras, d1, d2]` tensor, `d1` -1 for any. False sends the caller to `checkStack`, which
 * throws the error that names what is wrong.
 */
function isStack(value: unknown, ctx: CheckContext, d1: number, d2: number): value is Tensor3D {
  if (!isTensorLike(value) || value.isDisposed || value.dtype !== 'float32') return false;
  const shape = value.shape;
  return shape.length === 3 && shape[0] === ctx.maxLoras && (d1 < 0 || shape[1] === d1) && shape[2] === d2;
}

function isTensorLike(value: unknown): value is Tensor {
  return (
    value !== null &&
    typeof value === 'object' &&
    Array.isArray((value as Tensor).shape) &&
    typeof (value as Tensor).dtype === 'string' &&
    'dataId' in (value as object)
  );
}

/** A live tensor of the given rank and dtype; `layout` names the dimensions for the message. */
export function checkTensor(value: unknown, name: string, layout: string, dtype: 'float32' | 'int32' = 'float32'): Tensor {
  const rank = layoutRank(layout);
  if (!isTensorLike(value)) {
    throw new LoRAError('E_SHAPE', `${name} must be a tf.Tensor of shape ${layout}, got ${describeValue(value)}`);
  }
  if (value.isDisposed) throw new LoRAError('E_DISPOSED', `${name} (shape ${shapeOf(value)}) was already disposed`);
  if (value.rank !== rank) {
    throw new LoRAError('E_SHAPE', `${name} must have rank ${rank} ${layout}, got rank ${value.rank} with shape ${shapeOf(value)}`);
  }
  if (value.dtype !== dtype) {
    throw new LoRAError('E_UNSUPPORTED', `${name} must be ${dtype}, got ${value.dtype} (shape ${shapeOf(value)})`);
  }
  return value;
}

function checkTokens(actual: number, numTokens: number, name: string, t: Tensor, what = 'meta.numTokens'): void {
  if (actual !== numTokens) {
    throw new LoRAError(
      'E_INDEX',
      `${name} has ${actual} tokens (shape ${shapeOf(t)}) but the batch metadata has ${what} = ${numTokens}; call updateMetadata() for this batch first`,
    );
  }
}

/** Packed layers have a handful of slices (q/k/v, gate/up); more is a mistake, not a model. */
const MAX_SLICES = 64;

/** snapshotArray's options for the slice lists, made once (these checks run per layer call). */
const SLICE_LIST = { code: 'E_SHAPE', maxLength: MAX_SLICES, expected: 'an array of tensors' } as const;
const SLICE_WIDTHS = { code: 'E_SHAPE', maxLength: MAX_SLICES, expected: 'an array of widths' } as const;

function checkSliceList(value: unknown, name: string): readonly unknown[] {
  if (!Array.isArray(value))
    throw new LoRAError('E_SHAPE', `${name} must be an array with one tensor per slice, got ${describeValue(value)}`);
  const slices = snapshotArray(value, name, SLICE_LIST);
  if (slices.length === 0) throw new LoRAError('E_SHAPE', `${name} must hold at least one slice, got an empty array`);
  return slices;
}

/**
 * A call's slot ranks (each slot's true rank, see `ShrinkCall.slotRanks`): one integer in
 * `[0, maxLoraRank]` per slot, or undefined for "the stacks' full rank". An Int32Array is checked in
 * place (no getter can change it between the check and the kernel); anything else is copied once.
 * A rank can only make a kernel stop early, never read past a slot.
 */
export function checkSlotRanks(ctx: CheckContext, value: unknown): Int32Array | undefined {
  if (value === undefined) return undefined;
  const ranks =
    value instanceof Int32Array
      ? value
      : Int32Array.from(
          snapshotArray(value, 'slotRanks', {
            code: 'E_SHAPE',
            maxLength: ctx.maxLoras,
            expected: 'an Int32Array or number[] with one rank per slot',
            limitName: 'maxLoras',
            unit: 'ranks',
          }).map((v, s) => {
            if (typeof v !== 'number' || !Number.isInteger(v)) throw badSlotRank(ctx, s, v);
            return v;
          }),
        );
  if (ranks.length !== ctx.maxLoras) {
    throw new LoRAError('E_SHAPE', `slotRanks must have one rank per slot (maxLoras = ${ctx.maxLoras}), got ${ranks.length}`);
  }
  for (let s = 0; s < ranks.length; s++) {
    const v = ranks[s] as number;
    if (v < 0 || v > ctx.maxLoraRank) throw badSlotRank(ctx, s, v);
  }
  return ranks;
}

/**
 * A call's B layout (`BLayout`): 'padded' when absent. 'slot-rank' needs the call's slot ranks (they
 * give each slot's row stride) and a backend that reads it (`LoRABackend.readsSlotRankB`).
 */
export function checkBLayout(
  value: unknown,
  slotRanks: Int32Array | undefined,
  backend: { name: string; readsSlotRankB?: boolean },
): BLayout {
  if (value === undefined || value === 'padded') return 'padded';
  if (value !== 'slot-rank') throw new LoRAError('E_CONFIG', `bLayout must be 'padded' or 'slot-rank', got ${describeValue(value)}`);
  if (slotRanks === undefined) {
    throw new LoRAError('E_SHAPE', "bLayout 'slot-rank' needs slotRanks: each slot's B rows are read at the slot's rank");
  }
  if (backend.readsSlotRankB !== true) {
    throw new LoRAError(
      'E_UNSUPPORTED',
      `backend "${backend.name}" reads B stacks in the 'padded' layout only (no readsSlotRankB); got bLayout 'slot-rank'`,
    );
  }
  return 'slot-rank';
}

function badSlotRank(ctx: CheckContext, slot: number, value: unknown): LoRAError {
  return new LoRAError(
    'E_RANK',
    `slotRanks[${slot}] is ${describeValue(value)}; expected an integer rank in [0, ${ctx.maxLoraRank}] (maxLoraRank = ${ctx.maxLoraRank})`,
  );
}

/**
 * The one rank check: every path that takes an adapter's rank (punica tensors, layer slot writes,
 * adapter registration) refuses rank 0 and ranks above the slots' padded rank the same way.
 * `what` names the tensor or module and, where known, its shape.
 */
export function checkRankFits(rank: number, maxLoraRank: number, what: string): void {
  if (rank < 1) throw new LoRAError('E_RANK', `${what} has rank ${describeValue(rank)}; an adapter needs rank ≥ 1`);
  if (rank > maxLoraRank) {
    throw new LoRAError('E_RANK', `${what} has rank ${rank}; this runtime takes at most maxLoraRank = ${maxLoraRank}`);
  }
}

function checkRank(rank: number, ctx: CheckContext, name: string, t: Tensor): void {
  // The label is built only for the error: per layer call it was a string and a shape join (µs, cold).
  if (rank < 1 || rank > ctx.maxLoraRank) checkRankFits(rank, ctx.maxLoraRank, `${name} (shape ${shapeOf(t)})`);
}

/** A stacked `[L, d1, d2]` weight whose L must equal maxLoras. */
function checkStack(value: unknown, name: string, layout: string, ctx: CheckContext, expect: Array<[number, number, string]>): Tensor3D {
  const t = checkTensor(value, name, layout) as Tensor3D;
  if (t.shape[0] !== ctx.maxLoras) {
    throw new LoRAError('E_SHAPE', `${name} must stack maxLoras = ${ctx.maxLoras} slots ${layout}, got shape ${shapeOf(t)}`);
  }
  for (const [axis, size, label] of expect) {
    if (t.shape[axis] !== size) {
      throw new LoRAError('E_SHAPE', `${name} must have ${label} = ${size} on axis ${axis} of ${layout}, got shape ${shapeOf(t)}`);
    }
  }
  return t;
}

/**
 * A per-request LoRA strength (`lora_scale`; `tokenLoraScales` rows) must be a number that stays
 * finite as float32, the precision kernels apply it in: E_CONFIG naming `name` otherwise.
 */
export function checkStrength(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || !Number.isFinite(Math.fround(value))) {
    throw new LoRAError(
      'E_CONFIG',
      `${name} must be a finite float32 number (1 = the adapter as trained, 0 = the base model), got ${describeValue(value)}`,
    );
  }
  return value;
}

/** A LoRA scale (alpha / r, or a caller's) must be a finite number; `where` prefixes the message. */
export function checkScale(scale: unknown, where?: string): number {
  if (typeof scale !== 'number' || !Number.isFinite(scale)) {
    throw new LoRAError('E_CONFIG', `${where ? `${where}: ` : ''}scale must be a finite number, got ${describeValue(scale)}`);
  }
  return scale;
}

export interface ShrinkShape {
  numTokens: number;
  hidden: number;
  rank: number;
  numSlices: number;
  /** The caller's slice list as checked (a copy: kernels get exactly what was validated). */
  loraA: Tensor3D[];
}

export function checkShrink(ctx: CheckContext, numTokens: number, x: unknown, loraA: unknown, scale: unknown): ShrinkShape {
  const xt = checkTensor(x, 'x', '[T, H]') as Tensor2D;
  checkTokens(xt.shape[0], numTokens, 'x', xt);
  const hidden = xt.shape[1];
  const slices = checkSliceList(loraA, 'loraA');
  const a0 = isStack(slices[0], ctx, -1, hidden)
    ? slices[0]
    : checkStack(slices[0], 'loraA[0]', '[L, R, H]', ctx, [[2, hidden, 'H (x.shape[1])']]);
  const rank = a0.shape[1];
  checkRank(rank, ctx, 'loraA[0]', a0);
  for (let s = 1; s < slices.length; s++) {
    if (isStack(slices[s], ctx, rank, hidden)) continue;
    checkStack(slices[s], `loraA[${s}]`, '[L, R, H]', ctx, [
      [1, rank, 'R (as loraA[0])'],
      [2, hidden, 'H (x.shape[1])'],
    ]);
  }
  checkScale(scale);
  return { numTokens, hidden, rank, numSlices: slices.length, loraA: slices as Tensor3D[] };
}

export interface ExpandShape {
  numTokens: number;
  width: number;
  rank: number;
  numSlices: number;
  /** Copies of the caller's lists as checked. */
  loraB: Tensor3D[];
  outputSlices: number[];
}

export function checkExpand(
  ctx: CheckContext,
  numTokens: number,
  y: unknown,
  x: unknown,
  loraB: unknown,
  outputSlices: unknown,
  offsetStart: unknown,
  addInputs: unknown,
): ExpandShape {
  const xt = checkTensor(x, 'x', '[S, T, R]') as Tensor3D;
  checkTokens(xt.shape[1], numTokens, 'x', xt);
  const [numSlices, , rank] = xt.shape;
  checkRank(rank, ctx, 'x', xt);
  return checkExpandTargets(
    ctx,
    numTokens,
    y,
    { numSlices, rank, from: `x (shape ${shapeOf(xt)})` },
    loraB,
    outputSlices,
    offsetStart,
    addInputs,
  );
}

/** The expand half of a call: y, B and the slice layout, for a shrink result of known S and R. */
export function checkExpandTargets(
  ctx: CheckContext,
  numTokens: number,
  y: unknown,
  shrunk: { numSlices: number; rank: number; from: string },
  loraB: unknown,
  outputSlices: unknown,
  offsetStart: unknown,
  addInputs: unknown,
): ExpandShape {
  const { numSlices, rank } = shrunk;
  const yt = checkTensor(y, 'y', '[T, O]') as Tensor2D;
  checkTokens(yt.shape[0], numTokens, 'y', yt);
  const slices = checkSliceList(loraB, 'loraB');
  if (slices.length !== numSlices) {
    throw new LoRAError('E_SHAPE', `loraB has ${slices.length} slice(s) but ${shrunk.from} has S = ${numSlices}`);
  }
  const widths = Array.isArray(outputSlices) ? snapshotArray(outputSlices, 'outputSlices', SLICE_WIDTHS) : undefined;
  if (widths === undefined || widths.length !== numSlices) {
    throw new LoRAError(
      'E_SHAPE',
      `outputSlices must list ${numSlices} slice width(s) (one per loraB), got ${describeValue(outputSlices)}`,
    );
  }
  let total = 0;
  for (let s = 0; s < numSlices; s++) {
    const width = widths[s] as number;
    if (!Number.isSafeInteger(width) || width < 1) {
      throw new LoRAError('E_SHAPE', `outputSlices[${s}] must be a positive integer, got ${describeValue(width)}`);
    }
    if (!isStack(slices[s], ctx, width, rank)) {
      checkStack(slices[s], `loraB[${s}]`, '[L, O_s, R]', ctx, [
        [1, width, `O_s (outputSlices[${s}])`],
        [2, rank, `R (of ${shrunk.from})`],
      ]);
    }
    total += width;
  }
  if (!Number.isSafeInteger(offsetStart) || (offsetStart as number) < 0) {
    throw new LoRAError('E_SHAPE', `offsetStart must be a non-negative integer, got ${describeValue(offsetStart)}`);
  }
  const width = yt.shape[1];
  if ((offsetStart as number) + total > width) {
    throw new LoRAError(
      'E_SHAPE',
      `slices [${(widths as number[]).join(', ')}] at offsetStart ${offsetStart} need ${(offsetStart as number) + total} columns but y has ${width} (shape ${shapeOf(yt)})`,
    );
  }
  if (typeof addInputs !== 'boolean') throw new LoRAError('E_SHAPE', `addInputs must be a boolean, got ${describeValue(addInputs)}`);
  return { numTokens, width, rank, numSlices, loraB: slices as Tensor3D[], outputSlices: widths as number[] };
}

export function checkEmbedding(
  ctx: CheckContext,
  numTokens: number,
  y: unknown,
  tokenIds: unknown,
  loraA: unknown,
  loraB: unknown,
): { vocab: number; rank: number; width: number } {
  const yt = checkTensor(y, 'y', '[T, O]') as Tensor2D;
  checkTokens(yt.shape[0], numTokens, 'y', yt);
  const ids = checkTensor(tokenIds, 'tokenIds', '[T]', 'int32') as Tensor1D;
  checkTokens(ids.shape[0], numTokens, 'tokenIds', ids);
  const a = checkStack(loraA, 'loraA', '[L, V, R]', ctx, []);
  const [, vocab, rank] = a.shape;
  checkRank(rank, ctx, 'loraA', a);
  const width = yt.shape[1];
  checkStack(loraB, 'loraB', '[L, O, R]', ctx, [
    [1, width, 'O (y.shape[1])'],
    [2, rank, 'R (loraA.shape[2])'],
  ]);
  return { vocab, rank, width };
}

export function checkLogits(
  ctx: CheckContext,
  numSamples: number,
  y: unknown,
  x: unknown,
  loraA: unknown,
  loraB: unknown,
  scale: unknown,
): void {
  const yt = checkTensor(y, 'y', '[N, V]') as Tensor2D;
  checkTokens(yt.shape[0], numSamples, 'y', yt, 'meta.sampler.numTokens');
  const xt = checkTensor(x, 'x', '[N, H]') as Tensor2D;
  checkTokens(xt.shape[0], numSamples, 'x', xt, 'meta.sampler.numTokens');
  const a = checkStack(loraA, 'loraA', '[L, R, H]', ctx, [[2, xt.shape[1], 'H (x.shape[1])']]);
  const rank = a.shape[1];
  checkRank(rank, ctx, 'loraA', a);
  checkStack(loraB, 'loraB', '[L, V, R]', ctx, [
    [1, yt.shape[1], 'V (y.shape[1])'],
    [2, rank, 'R (loraA.shape[1])'],
  ]);
  checkScale(scale);
}

/** Token ids read on the host (a fresh upload is still there, so this costs no device readback). */
export function checkTokenIdValues(ids: ArrayLike<number>, vocab: number): void {
  for (let t = 0; t < ids.length; t++) {
    const id = ids[t] as number;
    if (!(id >= 0 && id < vocab)) {
      throw new LoRAError(
        'E_INDEX',
        `tokenIds[${t}] is ${describeValue(id)}; expected a token id in [0, V = ${vocab}) (V = loraA.shape[1])`,
      );
    }
  }
}
