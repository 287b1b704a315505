import {
  add,
  clone,
  gather,
  getBackend,
  mul,
  reshape,
  type Tensor1D,
  type Tensor2D,
  type Tensor3D,
  tensor1d,
  tensor3d,
  tidy,
  zeros,
} from '@tensorflow/tfjs-core';
import type { LoRABackend } from './backend.js';
import { type BLayout, expandCall, linearCall, type ShrinkCall, shrinkCall } from './calls.js';
import { describeValue, LoRAError } from './errors.js';
import { type BatchMapping, computeMetadata, type LoRAMapping, type LoRAMetadata } from './metadata.js';
import {
  type CheckContext,
  checkBLayout,
  checkEmbedding,
  checkExpand,
  checkExpandTargets,
  checkLogits,
  checkShrink,
  checkSlotRanks,
  checkTokenIdValues,
} from './validate.js';

/**
 * Each slot's true rank as a caller passes it (the layers pass what they wrote): one integer in
 * `[0, maxLoraRank]` per slot. Rows of A and columns of B past it must be zero; kernels that skip
 * padding (`LoRABackend.skipsPaddedRanks`) do not read them, so a rank-8 adapter in a runtime of
 * `maxLoraRank` 32 costs a rank-8 adapter. Omitted: every slot counts at the stacks' full rank.
 */
export type SlotRankArray = Int32Array | readonly number[];

/** Where {@link PunicaWrapper.addExpand} writes in y, and whether it adds. */
export interface ExpandOptions {
  /** First column of y that slice 0 writes (default 0). */
  offsetStart?: number;
  /** Add to y (true, default) or overwrite the written columns of LoRA tokens (false). */
  addInputs?: boolean;
  /** Each slot's true rank (see {@link SlotRankArray}); default: the full rank of the stacks. */
  slotRanks?: SlotRankArray;
  /** How the B stacks' slots hold their rows (`BLayout`, default 'padded'); 'slot-rank' needs `slotRanks`. */
  bLayout?: BLayout;
}

/** Options of {@link PunicaWrapper.addLoRALinear} and {@link PunicaWrapper.addLoRALogits}. */
export interface LinearOptions {
  /**
   * How the B stacks' slots hold their rows (`BLayout`, default 'padded', vLLM's layout). 'slot-rank'
   * (each slot's rows at its own rank, which the layers write for backends that declare
   * `readsSlotRankB`) needs `slotRanks`; E_UNSUPPORTED on other backends.
   */
  bLayout?: BLayout;
}

/** The limits a {@link PunicaWrapper} checks every call against (`createLoRA` passes the resolved config). */
export interface PunicaWrapperConfig {
  /** Slots: every stack's leading axis must equal it, and slot indices lie in `[0, maxLoras)`. */
  readonly maxLoras: number;
  /** Largest rank axis a stack or shrink result may have (E_RANK above it). */
  readonly maxLoraRank: number;
  /** Most rows `updateMetadata` accepts (E_CAPACITY above it); also the largest token bucket. */
  readonly maxNumTokens: number;
}

/**
 * The batch mapping the kernels read, for core's layers (DoRA's per-row factors read it too). Not
 * `punica.meta`: that is a copy a caller may write to, and a slot or row index written there must
 * not reach a kernel that indexes memory with it. Set by {@link PunicaWrapper}'s static block, the
 * one place that can read its private field; not exported from the package.
 */
export let kernelMetadata: (punica: PunicaWrapper) => LoRAMetadata;

/**
 * `addLoRALinear` (or, with `sampler`, `addLoRALogits`) for core's layers on their own stacks, with
 * scale 1. A layer built its stacks, slice widths and slot ranks from the runtime's config and
 * checked every value it wrote into them, and checked x before its base matmul made y; what a call
 * can still change is checked here: the runtime is live and has a batch on the active tfjs backend,
 * and no stack was disposed (the tensors are public: `layer.loraA`). The public methods check every
 * argument, which at decode cost more than a fifth of a layer call, all of it re-reading what the
 * layer already knows (docs/perf-notes.md). `module` names the layer in errors. Not exported from
 * the package.
 */
export let layerLoRA: (
  punica: PunicaWrapper,
  y: Tensor2D,
  x: Tensor2D,
  loraA: Tensor3D[],
  loraB: Tensor3D[],
  outputSlices: readonly number[],
  slotRanks: Int32Array,
  bLayout: BLayout,
  sampler: boolean,
  module: string,
) => Tensor2D;

/**
 * vLLM's PunicaWrapper for tfjs: one batch, many adapters, one shrink and one expand per layer.
 * Tensors in, new tensors out; inputs are never disposed or mutated. Every argument is checked here,
 * before anything is allocated, so a rejected call leaves the runtime usable and leaks nothing.
 */
export class PunicaWrapper {
  readonly #backend: LoRABackend;
  readonly #ctx: CheckContext;
  readonly #maxNumTokens: number;
  #meta: LoRAMetadata | undefined;
  #publicMeta: LoRAMetadata | undefined;
  #version = 0;
  #disposed = false;

  constructor(backend: LoRABackend, config: PunicaWrapperConfig) {
    this.#backend = backend;
    this.#ctx = { maxLoras: config.maxLoras, maxLoraRank: config.maxLoraRank };
    this.#maxNumTokens = config.maxNumTokens;
  }

  /**
   * Computes the batch's token grouping once on the host; every following call uses it. Optional
   * per-row strengths (`tokenLoraScales`, `samplerLoraScales`) multiply each row's LoRA term: a
   * request's `lora_scale` without another slot or a re-activation; strength 0 is the base model.
   */
  updateMetadata(m: BatchMapping): void {
    this.#live('updateMetadata');
    this.#meta = computeMetadata(m, { maxLoras: this.#ctx.maxLoras, maxNumTokens: this.#maxNumTokens, version: this.#version + 1 });
    this.#publicMeta = undefined;
    this.#version++;
  }

  /**
   * The current batch's metadata. A copy made once per batch: kernels index memory with the
   * mapping, so the one they use is never handed out where a caller could write to it.
   */
  get meta(): LoRAMetadata {
    this.#publicMeta ??= copyMetadata(this.#current('meta'));
    return this.#publicMeta;
  }

  static {
    kernelMetadata = (punica) => punica.#current('meta');
    layerLoRA = (punica, y, x, loraA, loraB, outputSlices, slotRanks, bLayout, sampler, module) =>
      punica.#layerLinear(y, x, loraA, loraB, outputSlices, slotRanks, bLayout, sampler, module);
  }

  /** `[S, T, R]` = `scale · A_s[slot(t)] · x[t]`, zeros for tokens with slot -1. */
  shrink(x: Tensor2D, loraA: Tensor3D[], scale: number, slotRanks?: SlotRankArray): Tensor3D {
    const meta = this.#ready('shrink');
    const checked = checkShrink(this.#ctx, meta.numTokens, x, loraA, scale);
    const ranks = checkSlotRanks(this.#ctx, slotRanks);
    if (meta.noLoRA) return zeros([checked.numSlices, checked.numTokens, checked.rank]);
    return this.#shrink(shrinkCall(x, checked.loraA, meta, scale, ranks));
  }

  /** y with slice s of `B_s[slot(t)] · x[s, t]` added (or written) at `offsetStart + Σ_{j<s} O_j`. */
  addExpand(y: Tensor2D, x: Tensor3D, loraB: Tensor3D[], outputSlices: number[], opts: ExpandOptions = {}): Tensor2D {
    const meta = this.#ready('addExpand');
    const { offsetStart, addInputs, slotRanks, bLayout } = expandOptions(opts);
    const checked = checkExpand(this.#ctx, meta.numTokens, y, x, loraB, outputSlices, offsetStart, addInputs);
    const ranks = checkSlotRanks(this.#ctx, slotRanks);
    const layout = checkBLayout(bLayout, ranks, this.#backend);
    if (meta.noLoRA) return clone(y);
    const call = expandCall(y, x, checked.loraB, meta, checked.outputSlices, { offsetStart, addInputs, slotRanks: ranks, bLayout: layout });
    return this.#backend.expand(call);
  }

  /**
   * `y + scale · B·(A·x)` for every LoRA token: one shrink and one expand for the whole batch (one
   * fused kernel where the backend has `linear`). `slotRanks`: see {@link SlotRankArray}; `options`:
   * see {@link LinearOptions}.
   */
  addLoRALinear(
    y: Tensor2D,
    x: Tensor2D,
    loraA: Tensor3D[],
    loraB: Tensor3D[],
    scale: number,
    outputSlices: number[],
    slotRanks?: SlotRankArray,
    options?: LinearOptions,
  ): Tensor2D {
    const meta = this.#ready('addLoRALinear');
    const a = checkShrink(this.#ctx, meta.numTokens, x, loraA, scale);
    const b = checkExpandTargets(
      this.#ctx,
      meta.numTokens,
      y,
      { numSlices: a.numSlices, rank: a.rank, from: 'loraA' },
      loraB,
      outputSlices,
      0,
      true,
    );
    const ranks = checkSlotRanks(this.#ctx, slotRanks);
    const layout = checkBLayout(optionsBLayout(options, 'addLoRALinear'), ranks, this.#backend);
    return this.#linearLanes(y, x, a.loraA, b.loraB, scale, b.outputSlices, meta, ranks, layout, false);
  }

  /** `y + B[slot(t)] · A[slot(t), tokenIds[t]]`: the LoRA term of an embedding lookup. `slotRanks`: see {@link SlotRankArray}. */
  addLoRAEmbedding(y: Tensor2D, tokenIds: Tensor1D, loraA: Tensor3D, loraB: Tensor3D, slotRanks?: SlotRankArray): Tensor2D {
    const meta = this.#ready('addLoRAEmbedding');
    const { vocab, rank, width } = checkEmbedding(this.#ctx, meta.numTokens, y, tokenIds, loraA, loraB);
    const ranks = checkSlotRanks(this.#ctx, slotRanks);
    // Ids are range-checked where reading them is free (host-memory backends); a GPU backend would
    // have to stall for the read-back, and its gather reads a zero row for an id out of range.
    if (this.#backend.hostMemory === true) checkTokenIdValues(tokenIds.dataSync(), vocab);
    return this.#withLanes(y, meta, (acc, lane) => {
      if (lane.noLoRA || allEmpty(lane, ranks)) return clone(acc);
      // Shrink of an embedding is a row gather: row slot·V + id of A viewed as [L·V, R]. Tokens
      // without LoRA gather row `id` of slot 0 and are then skipped by expand.
      const slotRows = new Int32Array(lane.numTokens);
      for (let t = 0; t < slotRows.length; t++) slotRows[t] = Math.max(lane.tokenLoraIndices[t] as number, 0) * vocab;
      return tidy(() => {
        const rows = add(tensor1d(slotRows, 'int32'), tokenIds);
        const shrunk = reshape(gather(reshape(loraA, [-1, rank]), rows), [1, lane.numTokens, rank]) as Tensor3D;
        return this.#backend.expand(expandCall(acc, withTokenScales(shrunk, lane), [loraB], lane, [width], { slotRanks: ranks }));
      });
    });
  }

  /**
   * `y + scale · B·(A·x)` for lm_head, one row per sampled sequence (`samplerLoraIndices`).
   * `slotRanks`: see {@link SlotRankArray}; `options`: see {@link LinearOptions}.
   */
  addLoRALogits(
    y: Tensor2D,
    x: Tensor2D,
    loraA: Tensor3D,
    loraB: Tensor3D,
    scale: number,
    slotRanks?: SlotRankArray,
    options?: LinearOptions,
  ): Tensor2D {
    const meta = this.#ready('addLoRALogits');
    checkLogits(this.#ctx, meta.sampler.numTokens, y, x, loraA, loraB, scale);
    const ranks = checkSlotRanks(this.#ctx, slotRanks);
    const layout = checkBLayout(optionsBLayout(options, 'addLoRALogits'), ranks, this.#backend);
    return this.#linearLanes(y, x, [loraA], [loraB], scale, [y.shape[1]], meta, ranks, layout, true);
  }

  /** Calls after dispose() throw E_DISPOSED. The backend is disposed by the runtime that owns it. */
  dispose(): void {
    this.#disposed = true;
    this.#meta = undefined;
    this.#publicMeta = undefined;
  }

  /** True once `dispose()` ran: every call then throws E_DISPOSED, and layers check it before touching their stacks. */
  get isDisposed(): boolean {
    return this.#disposed;
  }

  /**
   * `term(y, main mapping)`, then each mix lane's term added to that, in lane order (a row's terms
   * always add in its request's order, whatever else is in the batch). Lanes no row uses cost nothing.
   */
  #withLanes(y: Tensor2D, meta: LoRAMetadata, term: (acc: Tensor2D, lane: LoRAMetadata) => Tensor2D): Tensor2D {
    if (!meta.mixLanes.some(usedLane)) return term(y, meta);
    return tidy(() => meta.mixLanes.filter(usedLane).reduce((acc, lane) => term(acc, lane), term(y, meta)));
  }

  /** {@link layerLoRA}: a layer's call on its own stacks, checking only what a call can change. */
  #layerLinear(
    y: Tensor2D,
    x: Tensor2D,
    loraA: Tensor3D[],
    loraB: Tensor3D[],
    outputSlices: readonly number[],
    slotRanks: Int32Array,
    bLayout: BLayout,
    sampler: boolean,
    module: string,
  ): Tensor2D {
    const meta = this.#ready(sampler ? 'addLoRALogits' : 'addLoRALinear');
    checkStacksLive(loraA, 'loraA', module);
    checkStacksLive(loraB, 'loraB', module);
    // Nothing to add (no row has an adapter here, or none of theirs targets this layer): y itself,
    // the layer's own matmul result, without the copy the public call returns (a tfjs op, ~12 µs
    // per layer call at decode).
    const rows = sampler ? meta.sampler : meta;
    if ((rows.noLoRA || allEmpty(rows, slotRanks)) && !meta.mixLanes.some(usedLane)) return y;
    return this.#linearLanes(y, x, loraA, loraB, 1, outputSlices, meta, slotRanks, bLayout, sampler);
  }

  /**
   * {@link #linear} over the main mapping and each used mix lane (`sampler`: their sampler mappings,
   * for logits). Without mix lanes, the common case, it is one `#linear` and allocates no closure:
   * this runs per layer call (docs/perf-notes.md).
   */
  #linearLanes(
    y: Tensor2D,
    x: Tensor2D,
    loraA: Tensor3D[],
    loraB: Tensor3D[],
    scale: number,
    slices: readonly number[],
    meta: LoRAMetadata,
    slotRanks: Int32Array | undefined,
    bLayout: BLayout,
    sampler: boolean,
  ): Tensor2D {
    if (!meta.mixLanes.some(usedLane)) {
      return this.#linear(y, x, loraA, loraB, scale, slices, sampler ? meta.sampler : meta, slotRanks, bLayout);
    }
    return this.#withLanes(y, meta, (acc, lane) =>
      this.#linear(acc, x, loraA, loraB, scale, slices, sampler ? lane.sampler : lane, slotRanks, bLayout),
    );
  }

  #linear(
    y: Tensor2D,
    x: Tensor2D,
    loraA: Tensor3D[],
    loraB: Tensor3D[],
    scale: number,
    slices: readonly number[],
    meta: LoRAMapping,
    slotRanks: Int32Array | undefined,
    bLayout: BLayout,
  ): Tensor2D {
    if (meta.noLoRA || allEmpty(meta, slotRanks)) return clone(y);
    // One kernel where the backend fuses shrink and expand (and applies the strengths itself).
    const backend = this.#backend;
    if (backend.linear !== undefined && (meta.tokenScales === undefined || backend.appliesTokenScales === true)) {
      return backend.linear(linearCall(y, x, loraA, loraB, meta, scale, slices, slotRanks, bLayout));
    }
    return tidy(() => {
      const shrunk = this.#shrink(shrinkCall(x, loraA, meta, scale, slotRanks));
      return backend.expand(expandCall(y, shrunk, loraB, meta, slices, { slotRanks, bLayout }));
    });
  }

  /** The backend's shrink, with the rows' strengths applied by core where its kernel does not. */
  #shrink(call: ShrinkCall): Tensor3D {
    if (call.meta.tokenScales === undefined || this.#backend.appliesTokenScales === true) return this.#backend.shrink(call);
    return tidy(() => withTokenScales(this.#backend.shrink(call), call.meta));
  }

  #live(call: string): void {
    if (this.#disposed)
      throw new LoRAError('E_DISPOSED', `PunicaWrapper.${call}: the LoRA runtime was disposed; create a new one with createLoRA()`);
  }

  /** The batch's own mapping (the one kernels read), E_DISPOSED / E_INDEX as `meta` throws them. */
  #current(call: string): LoRAMetadata {
    this.#live(call);
    if (this.#meta === undefined) throw new LoRAError('E_INDEX', 'no batch metadata yet: call updateMetadata({ tokenLoraIndices }) first');
    return this.#meta;
  }

  #ready(call: string): LoRAMetadata {
    const meta = this.#current(call);
    const active = getBackend();
    if (active !== this.#backend.tfBackend) {
      throw new LoRAError(
        'E_BACKEND',
        `PunicaWrapper.${call}: LoRA backend "${this.#backend.name}" computes on tfjs backend "${this.#backend.tfBackend}" but the active tfjs backend is ${describeValue(active)}; call tf.setBackend("${this.#backend.tfBackend}")`,
      );
    }
    return meta;
  }
}

/**
 * Every slot the batch uses has rank 0 in this layer (no adapter of the batch targets it, e.g. an
 * untargeted lm_head): its LoRA term is zero, so the call is y itself, with no kernel and no copy.
 */
function allEmpty(meta: LoRAMapping, slotRanks: Int32Array | undefined): boolean {
  if (slotRanks === undefined) return false;
  // A plain loop: this runs per layer call, where a closure is one more cold object (docs/perf-notes.md).
  const slots = meta.activeSlots;
  for (let i = 0; i < slots.length; i++) if (slotRanks[slots[i] as number] !== 0) return false;
  return true;
}

/** A layer's stacks are public tensors (`layer.loraA`): one a caller disposed is E_DISPOSED, never read. */
function checkStacksLive(stacks: readonly Tensor3D[], name: string, module: string): void {
  for (let s = 0; s < stacks.length; s++) {
    if ((stacks[s] as Tensor3D).isDisposed) {
      throw new LoRAError(
        'E_DISPOSED',
        `layer ${module}: its ${name}[${s}] stack was disposed; the layer owns its stacks (dispose the layer instead)`,
      );
    }
  }
}

/** A mix lane some row uses (its tokens or its sampled rows); unused lanes cost nothing. */
const usedLane = (lane: LoRAMetadata): boolean => !lane.noLoRA || !lane.sampler.noLoRA;

/** `[S, T, R]` with row t multiplied by the mapping's strength for t (unchanged when every strength is 1). */
function withTokenScales(shrunk: Tensor3D, meta: LoRAMapping): Tensor3D {
  if (meta.tokenScales === undefined) return shrunk;
  return mul(shrunk, tensor3d(meta.tokenScales, [1, meta.numTokens, 1]));
}

function expandOptions(opts: unknown): { offsetStart: number; addInputs: boolean; slotRanks: unknown; bLayout: unknown } {
  if (opts === null || typeof opts !== 'object') {
    throw new LoRAError(
      'E_SHAPE',
      `addExpand options must be { offsetStart?, addInputs?, slotRanks?, bLayout? }, got ${describeValue(opts)}`,
    );
  }
  try {
    const o = opts as ExpandOptions;
    return { offsetStart: o.offsetStart ?? 0, addInputs: o.addInputs ?? true, slotRanks: o.slotRanks, bLayout: o.bLayout };
  } catch (err) {
    throw new LoRAError('E_SHAPE', `addExpand options could not be read: ${describeValue((err as Error)?.message)}`);
  }
}

/** `bLayout` of addLoRALinear / addLoRALogits' options, read once (a getter cannot answer differently later). */
function optionsBLayout(opts: unknown, call: string): unknown {
  if (opts === undefined) return undefined;
  if (opts === null || typeof opts !== 'object') {
    throw new LoRAError('E_SHAPE', `${call} options must be { bLayout? }, got ${describeValue(opts)}`);
  }
  try {
    return (opts as LinearOptions).bLayout;
  } catch (err) {
    throw new LoRAError('E_SHAPE', `${call} options could not be read: ${describeValue((err as Error)?.message)}`);
  }
}

function copyMapping(m: LoRAMapping): LoRAMapping {
  return Object.freeze({
    ...m,
    tokenLoraIndices: m.tokenLoraIndices.slice(),
    tokenScales: m.tokenScales?.slice(),
    sortedTokenIndices: m.sortedTokenIndices.slice(),
  });
}

function copyMetadata(meta: LoRAMetadata): LoRAMetadata {
  const tokens = copyMapping(meta);
  return Object.freeze({
    ...tokens,
    sampler: meta.sampler.tokenLoraIndices === meta.tokenLoraIndices ? tokens : copyMapping(meta.sampler),
    mixLanes: Object.freeze(meta.mixLanes.map(copyMetadata)),
  });
}
