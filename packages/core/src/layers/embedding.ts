import { gather, type Tensor1D, type Tensor2D, type Tensor3D, tidy } from '@tensorflow/tfjs-core';
import type { AdapterModuleWeights } from '../adapters/adapter.js';
import type { LoRARuntime } from '../create.js';
import { describeValue, LoRAError } from '../errors.js';
import { kernelMetadata } from '../punica.js';
import { checkRankFits, checkScale, checkTensor, checkTokenIdValues } from '../validate.js';
import { DoRASlots, doraEmbeddingFactors } from './dora.js';
import { checkLive, checkSlot, checkTokenCount, type LoRALayer, type MatrixInput, readMatrix } from './layer.js';
import { stackBytes, WeightStack, writeB } from './stack.js';

/**
 * Token embedding with LoRA: `W[id] + B[slot] · A[slot, id]`. PEFT stores lora_embedding_A as
 * `[r, V]`; it is transposed once, on activation, into the stacked `[L, V, R]` so that the shrink
 * of a token is one contiguous row. A DoRA adapter (PEFT `DoraEmbeddingLayer`) scales that by
 * `m / ‖column of W + scale·(B·A)ᵀ‖` per embedding dimension, the norms taken once per activation.
 */
export class LoRAEmbedding implements LoRALayer {
  /** Always `embedding`: the layer takes lora_embedding_A / lora_embedding_B weights. */
  readonly kind = 'embedding' as const;
  readonly modules: readonly string[];
  readonly sliceShapes: readonly {
    /** V: the vocabulary size (rows of the base table). */
    inFeatures: number;
    /** D: the embedding width (columns of the base table). */
    outFeatures: number;
  }[];
  /** Base table `[V, D]`. Not owned: the caller disposes it. */
  readonly weight: Tensor2D;
  readonly slotBytes: number;
  readonly #runtime: LoRARuntime;
  readonly #a: WeightStack;
  readonly #b: WeightStack;
  /** The rank written into each slot (0: empty): kernels that skip padding stop there. */
  readonly #ranks: Int32Array;
  /** DoRA's per-slot factors (`m / ‖column‖ − 1` per embedding dimension). */
  readonly #dora: DoRASlots;

  constructor(runtime: LoRARuntime, options: { module: string; weight: Tensor2D }) {
    const weight = checkTensor(options?.weight, 'weight', '[V, D]') as Tensor2D;
    if (typeof options.module !== 'string' || options.module.length === 0) {
      throw new LoRAError('E_CONFIG', `module must be the PEFT module name, got ${describeValue(options.module)}`);
    }
    const [vocab, dim] = weight.shape;
    const { maxLoras: L, maxLoraRank: R } = runtime.config;
    const aShape = [L, vocab, R] as const;
    const bShape = [L, dim, R] as const;
    this.slotBytes = stackBytes(aShape) + stackBytes(bShape);
    runtime.adapters.checkNewLayer([options.module], this.slotBytes, `embedding ${options.module} (V = ${vocab}, D = ${dim})`);
    this.#runtime = runtime;
    this.modules = Object.freeze([options.module]);
    this.sliceShapes = Object.freeze([Object.freeze({ inFeatures: vocab, outFeatures: dim })]);
    this.weight = weight;
    const overwrite = runtime.backend.overwrite?.bind(runtime.backend);
    this.#a = new WeightStack(aShape, overwrite);
    this.#b = new WeightStack(bShape, overwrite);
    this.#ranks = new Int32Array(L);
    this.#dora = new DoRASlots(L, [dim], (_, m) => doraEmbeddingFactors(weight, m));
    try {
      runtime.adapters.addLayer(this);
    } catch (err) {
      this.#a.dispose();
      this.#b.dispose();
      throw err;
    }
  }

  /** Stacked A `[L, V, R]` (PEFT's `[r, V]` transposed, rank zero-padded), uploaded on the first read after a slot write. */
  get loraA(): Tensor3D {
    return this.#a.tensor;
  }

  /** Stacked B `[L, D, R]`, scale folded in, rank zero-padded, uploaded on the first read after a slot write. */
  get loraB(): Tensor3D {
    return this.#b.tensor;
  }

  /** PEFT layouts: A `[r, V]` (lora_embedding_A), B `[D, r]` (lora_embedding_B), B times `scale`. */
  setLoRA(slot: number, a: MatrixInput, b: MatrixInput, scale = 1): void {
    checkLive(this.#runtime, `${this.modules[0]}.setLoRA`);
    checkSlot(slot, this.#runtime.config.maxLoras);
    checkScale(scale);
    const { inFeatures: vocab, outFeatures: dim } = this.sliceShapes[0] as { inFeatures: number; outFeatures: number };
    const A = readMatrix(a, `a for ${this.modules[0]}`, undefined, vocab);
    const B = readMatrix(b, `b for ${this.modules[0]}`, dim, A.rows);
    this.#write(slot, A.data, B.data, A.rows, scale);
    this.#dora.write(slot, [null]);
  }

  setSlot(slot: number, modules: readonly (AdapterModuleWeights | null)[]): void {
    checkSlot(slot, this.#runtime.config.maxLoras);
    const m = this.#prepare(modules);
    if (m === null) this.resetLoRA(slot);
    else {
      this.#write(slot, m.a, m.b, m.rank, m.scale);
      this.#dora.write(slot, [m.magnitude === undefined ? null : m]);
    }
  }

  validateSlot(modules: readonly (AdapterModuleWeights | null)[]): void {
    this.#prepare(modules);
  }

  #prepare(modules: readonly (AdapterModuleWeights | null)[]): AdapterModuleWeights | null {
    const m = modules[0] ?? null;
    if (m === null) return null;
    if (m.kind !== 'embedding')
      throw new LoRAError('E_SHAPE', `${this.modules[0]} is an embedding but the adapter holds linear weights for it`);
    const { inFeatures, outFeatures } = this.sliceShapes[0] as { inFeatures: number; outFeatures: number };
    if (m.inFeatures !== inFeatures || m.outFeatures !== outFeatures) {
      throw new LoRAError(
        'E_SHAPE',
        `${m.name}: adapter is for V = ${m.inFeatures}, D = ${m.outFeatures}; this embedding has V = ${inFeatures}, D = ${outFeatures}`,
      );
    }
    this.#checkSizes(m.a, m.b, m.rank);
    if (m.magnitude !== undefined) {
      if (m.magnitude.length !== outFeatures)
        throw new LoRAError('E_SHAPE', `${m.name}: the DoRA magnitude vector must have D = ${outFeatures} values`);
      // Host-memory backends read the factors back for free: checked before any slot is written.
      if (this.#runtime.backend.hostMemory === true) this.#dora.check(0, m);
    }
    return m;
  }

  #checkSizes(a: Float32Array, b: Float32Array, rank: number): void {
    checkRankFits(rank, this.#runtime.config.maxLoraRank, this.modules[0] as string);
    const { inFeatures: vocab, outFeatures: dim } = this.sliceShapes[0] as { inFeatures: number; outFeatures: number };
    if (a.length !== rank * vocab || b.length !== dim * rank) {
      throw new LoRAError(
        'E_SHAPE',
        `${this.modules[0]}: A must be [${rank}, ${vocab}] and B [${dim}, ${rank}], got ${a.length} and ${b.length} values`,
      );
    }
  }

  #write(slot: number, a: Float32Array, b: Float32Array, rank: number, scale: number): void {
    this.#checkSizes(a, b, rank);
    const R = this.#runtime.config.maxLoraRank;
    const { inFeatures: vocab, outFeatures: dim } = this.sliceShapes[0] as { inFeatures: number; outFeatures: number };
    const aBlock = this.#a.slot(slot);
    for (let k = 0; k < rank; k++) {
      for (let v = 0; v < vocab; v++) aBlock[v * R + k] = a[k * vocab + v] as number;
    }
    writeB(this.#b.slot(slot), b, dim, rank, R, scale);
    this.#ranks[slot] = rank;
  }

  /**
   * Zeros a slot's A and B (the manager calls it when the adapter there is deactivated or removed).
   * @throws {@link LoRAError} `E_INDEX` when `slot` is not an integer in `[0, maxLoras)`.
   */
  resetLoRA(slot: number): void {
    checkSlot(slot, this.#runtime.config.maxLoras);
    this.#a.slot(slot);
    this.#b.slot(slot);
    this.#ranks[slot] = 0;
    this.#dora.write(slot, [null]);
  }

  /** `W[ids]` plus each token's adapter. */
  forward(tokenIds: Tensor1D): Tensor2D {
    // Checked before the gather: a wrong id is a LoRAError naming it, not a tfjs error or a zero row.
    checkLive(this.#runtime, `${this.modules[0]}.forward`);
    const meta = kernelMetadata(this.#runtime.punica); // E_INDEX before any batch
    const ids = checkTensor(tokenIds, 'tokenIds', '[T]', 'int32');
    checkTokenCount(ids.shape[0] as number, meta.numTokens, this.modules[0] as string);
    if (this.#runtime.backend.hostMemory === true) {
      checkTokenIdValues(ids.dataSync(), (this.sliceShapes[0] as { inFeatures: number }).inFeatures);
    }
    return tidy(() =>
      this.#dora.apply(
        this.#runtime.punica.addLoRAEmbedding(gather(this.weight, tokenIds) as Tensor2D, tokenIds, this.loraA, this.loraB, this.#ranks),
        meta,
        undefined,
      ),
    );
  }

  /** Removes the layer from the adapter manager and frees its slot stacks; `weight` stays the caller's. */
  dispose(): void {
    this.#runtime.adapters.removeLayer(this);
    this.#a.dispose();
    this.#b.dispose();
    this.#dora.dispose();
  }
}
