import { add, keep, matMul, type Tensor1D, type Tensor2D, type Tensor3D, tidy, transpose } from '@tensorflow/tfjs-core';
import type { AdapterModuleWeights } from '../adapters/adapter.js';
import { type BLayout, bRowStride } from '../calls.js';
import type { LoRARuntime } from '../create.js';
import { describeValue, LoRAError } from '../errors.js';
import type { LoRAMapping, LoRAMetadata } from '../metadata.js';
import { kernelMetadata, layerLoRA } from '../punica.js';
import { checkRankFits, checkScale, checkTensor } from '../validate.js';
import { DoRASlots, doraFactors } from './dora.js';
import { checkLive, checkSlot, checkTokenCount, type LoRALayer, type MatrixInput, readMatrix } from './layer.js';
import { stackBytes, WeightStack, writeB } from './stack.js';

interface SliceWeights {
  a: Float32Array;
  b: Float32Array;
  rank: number;
  scale: number;
  name: string;
  /** The module when it is DoRA (its factors are made on the device when the slot is written), else null. */
  dora: AdapterModuleWeights | null;
}

/** The base weights of a linear layer: what every linear layer's options hold besides its module name(s). */
export interface LinearLayerOptions {
  /** Base weight, `[O, H]` (torch layout, y = x·Wᵀ) unless `layout` says `[H, O]`. Not owned: the caller disposes it. */
  weight: Tensor2D;
  /**
   * The layout `weight` is given in: 'out-in' (`[O, H]`, the default) or 'in-out' (`[H, O]`, y = x·W).
   * Give the layout the backend multiplies fastest (`runtime.backend.weightLayout`) and the layer
   * uses the tensor as it is; otherwise it keeps a transposed copy (made once, on the device).
   */
  layout?: 'out-in' | 'in-out';
  /** Optional base bias `[O]`. */
  bias?: Tensor1D;
}

/**
 * Shared by the linear layers: the base matmul plus one shrink and one expand over all slices.
 * Each slice owns stacked A `[L, R, H]` and B `[L, O_s, R]`; slot writes go to host mirrors and
 * reach the device once per forward that follows them.
 */
abstract class StackedLinear implements LoRALayer {
  /** Always `linear`: the layer takes lora_A / lora_B weights. */
  readonly kind = 'linear' as const;
  readonly modules: readonly string[];
  readonly sliceShapes: readonly {
    /** H: the width of x, for every slice. */
    inFeatures: number;
    /** O_s: this slice's output width. */
    outFeatures: number;
  }[];
  /** Output width O_s of each slice, in column order of the output; they add up to O. */
  readonly outputSizes: readonly number[];
  /** The base weight as given (`[O, H]`, or `[H, O]` with `layout: 'in-out'`); not owned: the caller disposes it. */
  readonly weight: Tensor2D;
  /** The layout of `weight`. */
  readonly layout: 'out-in' | 'in-out';
  /** The base bias `[O]` as given, or undefined; not owned: the caller disposes it. */
  readonly bias: Tensor1D | undefined;
  readonly slotBytes: number;
  /** What the base matmul multiplies by: `weight`, or its transposed copy (made once, here) in the backend's layout. */
  readonly #matrix: Tensor2D;
  readonly #matrixLayout: 'out-in' | 'in-out';
  readonly #ownsMatrix: boolean;
  /** The runtime the layer registered with: its config sizes the stacks, its `punica` runs the LoRA term. */
  protected readonly runtime: LoRARuntime;
  readonly #a: WeightStack[];
  readonly #b: WeightStack[];
  /** Each slot's largest rank over the slices: what kernels that skip padding read up to. */
  readonly #slotRanks: Int32Array;
  /** First output column of each slice. */
  readonly #offsets: number[];
  /** DoRA's per-slot column factors (`m / ‖W + s·B·A‖ − 1` per output row). */
  readonly #dora: DoRASlots;
  /**
   * How the B stacks hold each slot's rows (`BLayout`): 'slot-rank' where the backend reads it
   * (`readsSlotRankB`: a slot's rows at its own rank, a quarter of the cache lines for a rank-8
   * adapter in `maxLoraRank` 32 stacks), else 'padded'. Anyone passing `loraB` to punica passes this too.
   * A getter over a private field: slot writes and the kernels read the layout with no check per
   * call, so no caller may change it.
   */
  get bLayout(): BLayout {
    return this.#bLayout;
  }
  readonly #bLayout: BLayout;

  protected constructor(runtime: LoRARuntime, modules: readonly string[], outputSizes: readonly number[], options: LinearLayerOptions) {
    const layout = options?.layout ?? 'out-in';
    if (layout !== 'out-in' && layout !== 'in-out') {
      throw new LoRAError('E_CONFIG', `layout must be "out-in" ([O, H]) or "in-out" ([H, O]), got ${describeValue(layout)}`);
    }
    const weight = checkTensor(options?.weight, 'weight', layout === 'out-in' ? '[O, H]' : '[H, O]') as Tensor2D;
    const [outFeatures, hidden] = layout === 'out-in' ? weight.shape : [weight.shape[1], weight.shape[0]];
    if (modules.length === 0 || modules.length !== outputSizes.length || modules.some((m) => typeof m !== 'string' || m.length === 0)) {
      throw new LoRAError(
        'E_CONFIG',
        `expected one module name per output slice, got modules ${describeValue(modules)} for slices ${describeValue(outputSizes)}`,
      );
    }
    const total = outputSizes.reduce((a, b) => a + b, 0);
    if (!outputSizes.every((o) => Number.isSafeInteger(o) && o > 0) || total !== outFeatures) {
      throw new LoRAError(
        'E_SHAPE',
        `output slices ${describeValue(outputSizes)} must be positive and add up to O = ${outFeatures} (weight shape [${weight.shape}])`,
      );
    }
    if (options.bias !== undefined) {
      const bias = checkTensor(options.bias, 'bias', '[O]');
      if (bias.shape[0] !== outFeatures) throw new LoRAError('E_SHAPE', `bias must be [${outFeatures}], got [${bias.shape}]`);
    }
    const { maxLoras: L, maxLoraRank: R } = runtime.config;
    const aShapes = outputSizes.map(() => [L, R, hidden] as const);
    const bShapes = outputSizes.map((o) => [L, o, R] as const);
    this.slotBytes = [...aShapes, ...bShapes].reduce((n, shape) => n + stackBytes(shape), 0);
    // Everything that can refuse runs before anything is allocated.
    runtime.adapters.checkNewLayer(
      modules,
      this.slotBytes,
      `layer ${modules[0]} (${modules.length} slice(s), H = ${hidden}, O = ${outFeatures})`,
    );
    this.runtime = runtime;
    this.modules = Object.freeze([...modules]);
    // Frozen: the kernels read these widths with no check per call (a width written here would
    // make them write past y).
    this.outputSizes = Object.freeze([...outputSizes]);
    this.sliceShapes = Object.freeze(outputSizes.map((o) => Object.freeze({ inFeatures: hidden, outFeatures: o })));
    this.weight = weight;
    this.layout = layout;
    this.bias = options.bias;
    const overwrite = runtime.backend.overwrite?.bind(runtime.backend);
    this.#a = aShapes.map((shape) => new WeightStack(shape, overwrite));
    this.#b = bShapes.map((shape) => new WeightStack(shape, overwrite));
    this.#slotRanks = new Int32Array(L);
    this.#offsets = outputSizes.map((_, s) => outputSizes.slice(0, s).reduce((a, b) => a + b, 0));
    this.#bLayout = runtime.backend.readsSlotRankB === true ? 'slot-rank' : 'padded';
    // tfjs-wasm multiplies `x·W` with W [H, O] through XNNPACK, 5× faster than `transposeB`; other
    // backends take either. A weight already in the wanted layout is used as it is (one copy on the device).
    const wanted = runtime.backend.weightLayout === 'in-out' ? 'in-out' : layout;
    this.#ownsMatrix = wanted !== layout;
    this.#matrix = this.#ownsMatrix ? keep(transpose(weight)) : weight;
    this.#matrixLayout = wanted;
    const base = { matrix: this.#matrix, layout: wanted };
    this.#dora = new DoRASlots(L, this.outputSizes, (s, m) => doraFactors(base, this.#offsets[s] as number, m));
    try {
      runtime.adapters.addLayer(this);
    } catch (err) {
      this.#free();
      throw err;
    }
  }

  /** Stacked A per slice `[L, R, H]` (the tensors punica reads). */
  get loraA(): Tensor3D[] {
    return this.#a.map((s) => s.tensor);
  }

  /** Stacked B per slice `[L, O_s, R]`, scaling folded in, each slot's rows as {@link bLayout} says. */
  get loraB(): Tensor3D[] {
    return this.#b.map((s) => s.tensor);
  }

  /**
   * Each slot's true rank (the largest written over the slices, 0 when empty): a copy. A caller that
   * passes `loraA`/`loraB` to punica itself passes these and {@link bLayout} with them.
   */
  get slotRanks(): Int32Array {
    return this.#slotRanks.slice();
  }

  /** The slot ranks the layer passes to punica with every call: its own array, never handed out (a caller could write to it). */
  protected get callRanks(): Int32Array {
    return this.#slotRanks;
  }

  setSlot(slot: number, modules: readonly (AdapterModuleWeights | null)[]): void {
    checkSlot(slot, this.runtime.config.maxLoras);
    const prepared = this.#prepare(modules);
    this.#commit(slot, prepared);
    this.#commitDoRA(slot, prepared);
  }

  validateSlot(modules: readonly (AdapterModuleWeights | null)[]): void {
    this.#prepare(modules);
  }

  #prepare(modules: readonly (AdapterModuleWeights | null)[]): (SliceWeights | null)[] {
    return this.modules.map((name, s) => {
      const m = modules[s] ?? null;
      if (m !== null && m.kind !== 'linear')
        throw new LoRAError('E_SHAPE', `${name} is a linear layer but the adapter holds embedding weights for it`);
      if (m === null) return null;
      const w = this.#check(s, { a: m.a, b: m.b, rank: m.rank, scale: m.scale, name: m.name, dora: null });
      if (m.magnitude === undefined) return w;
      if (m.magnitude.length !== (this.sliceShapes[s] as { outFeatures: number }).outFeatures)
        throw new LoRAError('E_SHAPE', `${m.name}: the DoRA magnitude vector must have one value per output of layer ${this.modules[s]}`);
      // Host-memory backends read the factors back for free: checked here, before any slot is written.
      if (this.runtime.backend.hostMemory === true) this.#dora.check(s, m);
      return { ...w, dora: m };
    });
  }

  /** A slot's DoRA factors (the per-slot rows are only made once a DoRA adapter arrives). */
  #commitDoRA(slot: number, prepared: readonly (SliceWeights | null)[]): void {
    this.#dora.write(
      slot,
      prepared.map((w) => w?.dora ?? null),
    );
  }

  /**
   * Zeros a slot's A and B in every slice (the manager calls it when the adapter there is deactivated or removed).
   * @throws {@link LoRAError} `E_INDEX` when `slot` is not an integer in `[0, maxLoras)`.
   */
  resetLoRA(slot: number): void {
    checkSlot(slot, this.runtime.config.maxLoras);
    this.#commit(
      slot,
      this.modules.map(() => null),
    );
    this.#commitDoRA(
      slot,
      this.modules.map(() => null),
    );
  }

  /**
   * Writes a slot from PEFT layouts, one entry per slice: A `[r, H]`, B `[O_s, r]` (B times
   * `scale`), null for a slice the adapter does not target. Everything is checked before anything
   * is written, so a rejected call leaves the slot as it was.
   */
  protected writeSlot(slot: number, a: readonly (MatrixInput | null)[], b: readonly (MatrixInput | null)[], scale: number): void {
    checkLive(this.runtime, `${this.modules[0]}.setLoRA`);
    checkSlot(slot, this.runtime.config.maxLoras);
    checkScale(scale);
    const prepared = this.modules.map((name, s) => {
      const [as, bs] = [a[s], b[s]];
      if (as == null || bs == null) return null;
      const { inFeatures, outFeatures } = this.sliceShapes[s] as { inFeatures: number; outFeatures: number };
      const A = readMatrix(as, `a for ${name}`, undefined, inFeatures);
      const B = readMatrix(bs, `b for ${name}`, outFeatures, A.rows);
      return this.#check(s, { a: A.data, b: B.data, rank: A.rows, scale, name, dora: null });
    });
    this.#commit(slot, prepared);
    this.#commitDoRA(slot, prepared);
  }

  #check(s: number, w: SliceWeights): SliceWeights {
    const { inFeatures, outFeatures } = this.sliceShapes[s] as { inFeatures: number; outFeatures: number };
    checkRankFits(w.rank, this.runtime.config.maxLoraRank, w.name);
    if (w.a.length !== w.rank * inFeatures || w.b.length !== outFeatures * w.rank) {
      throw new LoRAError(
        'E_SHAPE',
        `${w.name}: A must be [${w.rank}, ${inFeatures}] and B [${outFeatures}, ${w.rank}] for layer ${this.modules[s]}, got ${w.a.length} and ${w.b.length} values`,
      );
    }
    return w;
  }

  /** Writes every slice of a slot (null: zeros). The slot's rank is known first: in the 'slot-rank' layout it is every slice's B row stride. */
  #commit(slot: number, prepared: readonly (SliceWeights | null)[]): void {
    let rank = 0;
    for (const w of prepared) rank = Math.max(rank, w === null ? 0 : w.rank);
    this.#slotRanks[slot] = rank;
    // The kernels' rule for reading the slot's B rows, so writer and reader agree.
    const stride = bRowStride(this.#bLayout, this.#slotRanks, slot, this.runtime.config.maxLoraRank);
    for (const [s, w] of prepared.entries()) {
      const aBlock = (this.#a[s] as WeightStack).slot(slot);
      const bBlock = (this.#b[s] as WeightStack).slot(slot);
      if (w === null) continue;
      aBlock.set(w.a); // [r, H] is the first r rows of the slot's [R, H]
      writeB(bBlock, w.b, (this.sliceShapes[s] as { outFeatures: number }).outFeatures, w.rank, stride, w.scale);
    }
  }

  /** `x·Wᵀ (+ bias)` plus every token's adapter: one shrink and one expand for the batch (and DoRA's column factors where a token's adapter has them). */
  forward(x: Tensor2D): Tensor2D {
    // Checked before the base matmul, so a wrong input is a LoRAError naming it, not a tfjs error.
    this.checkInput(x);
    return tidy(() => {
      let y = (this.#matrixLayout === 'in-out' ? matMul(x, this.#matrix) : matMul(x, this.#matrix, false, true)) as Tensor2D;
      if (this.bias) y = add(y, this.bias) as Tensor2D;
      y = this.#addLoRA(y, x);
      return this.#dora.apply(y, this.mappingOf(kernelMetadata(this.runtime.punica)), this.bias);
    });
  }

  /**
   * One row per token (false), or per sequence being sampled (true: lm_head, whose call is
   * `punica.addLoRALogits`).
   */
  protected readonly sampledRows: boolean = false;

  /**
   * The base output `y` `[T, O]` plus every row's adapter term for input `x` `[T, H]`, as
   * `punica.addLoRALinear` (or, with {@link sampledRows}, `addLoRALogits`) computes it. For
   * subclasses: x and y are checked here (E_SHAPE, E_INDEX naming them); `forward` checks x itself
   * and calls the unchecked path.
   */
  protected addLoRA(y: Tensor2D, x: Tensor2D): Tensor2D {
    this.checkInput(x);
    const yt = checkTensor(y, 'y', '[T, O]');
    const O = this.sliceShapes.reduce((n, s) => n + s.outFeatures, 0);
    if (yt.shape[0] !== x.shape[0] || yt.shape[1] !== O) {
      throw new LoRAError(
        'E_SHAPE',
        `y must be [T = ${x.shape[0]}, O = ${O}] for layer ${this.modules[0]}, got shape [${yt.shape.join(', ')}]`,
      );
    }
    return this.#addLoRA(y, x);
  }

  /** {@link addLoRA} on inputs `forward` checked: `layerLoRA` checks only what else a call can change. */
  #addLoRA(y: Tensor2D, x: Tensor2D): Tensor2D {
    return layerLoRA(
      this.runtime.punica,
      y,
      x,
      this.loraA,
      this.loraB,
      this.outputSizes,
      this.callRanks,
      this.#bLayout,
      this.sampledRows,
      this.modules[0] as string,
    );
  }

  /** `x` `[T, H]` float32 with T = the rows this layer's batch mapping has (tokens; logits: sequences). */
  protected checkInput(x: Tensor2D): void {
    checkLive(this.runtime, `${this.modules[0]}.forward`);
    const meta = kernelMetadata(this.runtime.punica); // E_INDEX before any batch
    const xt = checkTensor(x, 'x', '[T, H]');
    const hidden = (this.sliceShapes[0] as { inFeatures: number }).inFeatures;
    if (xt.shape[1] !== hidden) {
      throw new LoRAError('E_SHAPE', `x must be [T, H = ${hidden}] for layer ${this.modules[0]}, got shape [${xt.shape.join(', ')}]`);
    }
    checkTokenCount(xt.shape[0] as number, this.mappingOf(meta).numTokens, this.modules[0] as string);
  }

  /** The mapping of this layer's rows: the token mapping (one row per token). */
  protected mappingOf(meta: LoRAMetadata): LoRAMapping {
    return meta;
  }

  /**
   * Removes the layer from the adapter manager and frees its slot stacks, and the transposed copy
   * of `weight` if it made one; `weight` and `bias` stay the caller's.
   */
  dispose(): void {
    this.runtime.adapters.removeLayer(this);
    this.#free();
  }

  #free(): void {
    if (this.#ownsMatrix) this.#matrix.dispose();
    for (const s of [...this.#a, ...this.#b]) s.dispose();
    this.#dora.dispose();
  }
}

/** One LoRA slice: o_proj, down_proj. */
export class LoRALinear extends StackedLinear {
  constructor(runtime: LoRARuntime, options: LinearLayerOptions & { module: string }) {
    super(runtime, [options?.module], [options?.weight?.shape?.[options?.layout === 'in-out' ? 1 : 0] as number], options);
  }

  /** Puts adapter weights in a slot: A `[r, H]`, B `[O, r]` (PEFT layouts), B multiplied by `scale`. */
  setLoRA(slot: number, a: MatrixInput, b: MatrixInput, scale = 1): void {
    this.writeSlot(slot, [a], [b], scale);
  }
}

/** Packed slices with their own widths: q/k/v (GQA: k = v = H/4), gate/up. */
export class MergedLoRALinear extends StackedLinear {
  constructor(runtime: LoRARuntime, options: LinearLayerOptions & { modules: string[]; outputSizes: number[] }) {
    super(runtime, options?.modules ?? [], options?.outputSizes ?? [], options);
  }

  /** Per slice A `[r, H]` and B `[O_s, r]`, or null for a slice the adapter does not target. */
  setLoRA(slot: number, a: (MatrixInput | null)[], b: (MatrixInput | null)[], scale = 1): void {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== this.modules.length || b.length !== this.modules.length) {
      throw new LoRAError(
        'E_SHAPE',
        `setLoRA expects ${this.modules.length} A and B entries (one per slice), got ${describeValue(a)} and ${describeValue(b)}`,
      );
    }
    this.writeSlot(slot, a, b, scale);
  }
}

/** lm_head: logits for the rows being sampled (one per sequence, `samplerLoraIndices`). */
export class LoRALogits extends LoRALinear {
  /** lm_head's rows are the sequences being sampled: its call is the one `punica.addLoRALogits` makes. */
  protected override readonly sampledRows = true;

  /** The mapping of lm_head's rows: one per sequence being sampled (`meta.sampler`). */
  protected override mappingOf(meta: LoRAMetadata): LoRAMapping {
    return meta.sampler;
  }
}
