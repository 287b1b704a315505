import { gather, type Tensor1D, type Tensor2D, type Tensor3D, tidy } from '@tensorflow/tfjs-core';
import type { AdapterModuleWeights } from '../adapters/adapter.js';
import type { LoRARuntime } from '../create.js';
import { describeValue, LoRAError } from '../errors.js';
import { checkTensor } from '../validate.js';
import { checkLayerRank, checkSlot, type LoRALayer, type MatrixInput, readMatrix } from './layer.js';
import { WeightStack, writeB } from './stack.js';

/**
 * Token embedding with LoRA: `W[id] + B[slot] · A[slot, id]`. PEFT stores lora_embedding_A as
 * `[r, V]`; it is transposed once, on activation, into the stacked `[L, V, R]` so that the shrink
 * of a token is one contiguous row.
 */
export class LoRAEmbedding implements LoRALayer {
  readonly kind = 'embedding' as const;
  readonly modules: readonly string[];
  readonly sliceShapes: readonly { inFeatures: number; outFeatures: number }[];
  /** Base table `[V, D]`. Not owned: the caller disposes it. */
  readonly weight: Tensor2D;
  readonly #runtime: LoRARuntime;
  readonly #a: WeightStack;
  readonly #b: WeightStack;

  constructor(runtime: LoRARuntime, options: { module: string; weight: Tensor2D }) {
    const weight = checkTensor(options?.weight, 'weight', '[V, D]') as Tensor2D;
    if (typeof options.module !== 'string' || options.module.length === 0) {
      throw new LoRAError('E_CONFIG', `module must be the PEFT module name, got ${describeValue(options.module)}`);
    }
    const [vocab, dim] = weight.shape;
    const { maxLoras: L, maxLoraRank: R } = runtime.config;
    this.#runtime = runtime;
    this.modules = Object.freeze([options.module]);
    this.sliceShapes = Object.freeze([Object.freeze({ inFeatures: vocab, outFeatures: dim })]);
    this.weight = weight;
    this.#a = new WeightStack([L, vocab, R]);
    this.#b = new WeightStack([L, dim, R]);
    runtime.adapters.addLayer(this);
  }

  get loraA(): Tensor3D {
    return this.#a.tensor;
  }

  get loraB(): Tensor3D {
    return this.#b.tensor;
  }

  /** PEFT layouts: A `[r, V]` (lora_embedding_A), B `[D, r]` (lora_embedding_B), B times `scale`. */
  setLoRA(slot: number, a: MatrixInput, b: MatrixInput, scale = 1): void {
    checkSlot(slot, this.#runtime.config.maxLoras);
    const { inFeatures: vocab, outFeatures: dim } = this.sliceShapes[0] as { inFeatures: number; outFeatures: number };
    const A = readMatrix(a, `a for ${this.modules[0]}`, undefined, vocab);
    const B = readMatrix(b, `b for ${this.modules[0]}`, dim, A.rows);
    this.#write(slot, A.data, B.data, A.rows, scale);
  }

  setSlot(slot: number, modules: readonly (AdapterModuleWeights | null)[]): void {
    checkSlot(slot, this.#runtime.config.maxLoras);
    const m = modules[0] ?? null;
    if (m === null) {
      this.resetLoRA(slot);
      return;
    }
    if (m.kind !== 'embedding')
      throw new LoRAError('E_SHAPE', `${this.modules[0]} is an embedding but the adapter holds linear weights for it`);
    const { inFeatures, outFeatures } = this.sliceShapes[0] as { inFeatures: number; outFeatures: number };
    if (m.inFeatures !== inFeatures || m.outFeatures !== outFeatures) {
      throw new LoRAError(
        'E_SHAPE',
        `${m.name}: adapter is for V = ${m.inFeatures}, D = ${m.outFeatures}; this embedding has V = ${inFeatures}, D = ${outFeatures}`,
      );
    }
    this.#write(slot, m.a, m.b, m.rank, m.scale);
  }

  #write(slot: number, a: Float32Array, b: Float32Array, rank: number, scale: number): void {
    const R = this.#runtime.config.maxLoraRank;
    checkLayerRank(rank, R, this.modules[0] as string);
    const { inFeatures: vocab, outFeatures: dim } = this.sliceShapes[0] as { inFeatures: number; outFeatures: number };
    if (a.length !== rank * vocab || b.length !== dim * rank) {
      throw new LoRAError(
        'E_SHAPE',
        `${this.modules[0]}: A must be [${rank}, ${vocab}] and B [${dim}, ${rank}], got ${a.length} and ${b.length} values`,
      );
    }
    const aBlock = this.#a.slot(slot);
    for (let k = 0; k < rank; k++) {
      for (let v = 0; v < vocab; v++) aBlock[v * R + k] = a[k * vocab + v] as number;
    }
    writeB(this.#b.slot(slot), b, dim, rank, R, scale);
  }

  resetLoRA(slot: number): void {
    checkSlot(slot, this.#runtime.config.maxLoras);
    this.#a.slot(slot);
    this.#b.slot(slot);
  }

  /** `W[ids]` plus each token's adapter. */
  forward(tokenIds: Tensor1D): Tensor2D {
    return tidy(() => this.#runtime.punica.addLoRAEmbedding(gather(this.weight, tokenIds) as Tensor2D, tokenIds, this.loraA, this.loraB));
  }

  dispose(): void {
    this.#runtime.adapters.removeLayer(this);
    this.#a.dispose();
    this.#b.dispose();
  }
}
