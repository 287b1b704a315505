import { LoRALinear, type LoRARuntime, MergedLoRALinear } from '@lora/core';
import {
  add,
  concat,
  dispose,
  keep,
  mul,
  reshape,
  sigmoid,
  slice,
  split,
  type Tensor,
  type Tensor1D,
  type Tensor2D,
  type Tensor3D,
  tensor1d,
  tensor2d,
  tidy,
} from '@tensorflow/tfjs-core';
import { type AttentionMatmul, applyRotary, attend, type spans } from './attention.js';
import type { ModelConfig } from './config.js';
import { appendByConcat, appendInPlace, type KvWrite } from './kv-cache.js';
import { kvWidth, layerModules, qWidth } from './modules.js';
import { rmsNorm } from './rms-norm.js';
import type { LayerCache, Sequence } from './sequence.js';
import type { WeightTaker } from './weights.js';

/** Where one sequence's tokens sit in the step's rows, and the position of its first new token. */
export interface StepRows {
  readonly seq: Sequence;
  readonly start: number;
  readonly count: number;
  readonly position: number;
}

/** What every layer of one forward step shares. */
export interface StepContext {
  readonly rows: readonly StepRows[];
  readonly tokens: number;
  /** `[tokens, 1, head_dim/2]`, broadcast over heads. */
  readonly cos: Tensor3D;
  readonly sin: Tensor3D;
  /** Keys read and mask for row i's queries under a window (shared by the layers). */
  readonly span: ReturnType<typeof spans>;
}

/**
 * One decoder layer (transformers `LlamaDecoderLayer`; Mistral and Qwen2 are the same): input
 * RMSNorm → packed q/k/v (+ bias) → rotary → causal GQA attention over each sequence's KV cache →
 * o_proj, residual; post-attention RMSNorm → packed gate/up → SwiGLU (`silu(gate) · up`) →
 * down_proj, residual. The projections are LoRA layers: one shrink and one expand each for the
 * whole mixed-adapter batch. Only attention runs per sequence.
 */
export class DecoderLayer {
  readonly index: number;
  readonly #config: ModelConfig;
  readonly #window: number | null;
  /** Per-head plain matmuls where the backend has an untransposed fast path ('in-out' weights): see `AttentionMatmul`. */
  readonly #attentionMatmul: AttentionMatmul;
  readonly #qkv: MergedLoRALinear;
  readonly #o: LoRALinear;
  readonly #gateUp: MergedLoRALinear;
  readonly #down: LoRALinear;
  readonly #inputNorm: Tensor1D;
  readonly #postNorm: Tensor1D;
  /** The backend's in-place write where it keeps tensors in host memory: caches grow in place (kv-cache.ts); else undefined (concat). */
  readonly #write: KvWrite | undefined;
  /** The cache's sizes for `appendInPlace`, made once (it runs per layer, sequence and step). */
  readonly #kvShape: { heads: number; headDim: number; maxPositions: number };

  /**
   * Takes the layer's weights from `weights` (and the tensors made of them into `owned`, which the
   * model disposes). On failure whatever this constructor created is disposed before it throws.
   */
  constructor(runtime: LoRARuntime, config: ModelConfig, index: number, weights: WeightTaker, owned: Tensor[]) {
    this.index = index;
    this.#config = config;
    this.#window = config.layerTypes[index] === 'sliding_attention' ? config.slidingWindow : null;
    this.#attentionMatmul = runtime.backend.weightLayout === 'in-out' ? 'per-head' : 'batched';
    const { backend } = runtime;
    this.#write = backend.hostMemory === true && backend.overwrite !== undefined ? backend.overwrite.bind(backend) : undefined;
    this.#kvShape = { heads: config.numKeyValueHeads, headDim: config.headDim, maxPositions: config.maxPositionEmbeddings };
    const c = config;
    const m = layerModules(index);
    const made: Tensor[] = [];
    const layers: { dispose(): void }[] = [];
    // The layout the backend multiplies fastest, made on the host (see `transposeInto`): one device copy per weight.
    const layout = runtime.backend.weightLayout === 'in-out' ? 'in-out' : 'out-in';
    const matrix = (data: Float32Array, rows: number, cols: number) =>
      track(layout === 'in-out' ? tensor2d(weights.transposed(data, rows, cols), [cols, rows]) : tensor2d(data, [rows, cols]));
    const vector = (data: Float32Array) => track(tensor1d(data));
    const track = <T extends Tensor>(t: T): T => {
      made.push(t);
      return t;
    };
    const biases = (names: string[], on: boolean) => (on ? vector(weights.pack(names.map((n) => `${n}.bias`))) : undefined);
    try {
      const qkvNames = [m.q, m.k, m.v];
      const qkvRows = qWidth(c) + 2 * kvWidth(c);
      this.#qkv = new MergedLoRALinear(runtime, {
        modules: qkvNames,
        outputSizes: [qWidth(c), kvWidth(c), kvWidth(c)],
        weight: matrix(weights.pack(qkvNames.map((n) => `${n}.weight`)), qkvRows, c.hiddenSize),
        layout,
        bias: biases(qkvNames, c.qkvBias),
      });
      layers.push(this.#qkv);
      this.#o = new LoRALinear(runtime, {
        module: m.o,
        weight: matrix(weights.take(`${m.o}.weight`), c.hiddenSize, qWidth(c)),
        layout,
        bias: biases([m.o], c.oProjBias),
      });
      layers.push(this.#o);
      const guNames = [m.gate, m.up];
      this.#gateUp = new MergedLoRALinear(runtime, {
        modules: guNames,
        outputSizes: [c.intermediateSize, c.intermediateSize],
        weight: matrix(weights.pack(guNames.map((n) => `${n}.weight`)), 2 * c.intermediateSize, c.hiddenSize),
        layout,
        bias: biases(guNames, c.mlpBias),
      });
      layers.push(this.#gateUp);
      this.#down = new LoRALinear(runtime, {
        module: m.down,
        weight: matrix(weights.take(`${m.down}.weight`), c.hiddenSize, c.intermediateSize),
        layout,
        bias: biases([m.down], c.mlpBias),
      });
      layers.push(this.#down);
      this.#inputNorm = vector(weights.take(`${m.inputNorm}.weight`));
      this.#postNorm = vector(weights.take(`${m.postAttentionNorm}.weight`));
    } catch (err) {
      for (const l of layers) l.dispose();
      dispose(made);
      throw err;
    }
    owned.push(...made);
  }

  /** `h` `[tokens, hidden]` → the layer's output; appends this layer's new keys and values to each sequence's cache. */
  forward(h: Tensor2D, step: StepContext): Tensor2D {
    const c = this.#config;
    const { tokens: T } = step;
    const hd = c.headDim;
    const [q, k, v] = split(this.#qkv.forward(rmsNorm(h, this.#inputNorm, c.rmsNormEps)), [qWidth(c), kvWidth(c), kvWidth(c)], 1);
    const qr = applyRotary(reshape(q as Tensor, [T, c.numAttentionHeads, hd]) as Tensor3D, step.cos, step.sin);
    const kr = applyRotary(reshape(k as Tensor, [T, c.numKeyValueHeads, hd]) as Tensor3D, step.cos, step.sin);
    const vr = reshape(v as Tensor, [T, c.numKeyValueHeads, hd]) as Tensor3D;
    // Read once per layer for every sequence of the step: host memory, so no device stall.
    const host = this.#write === undefined ? null : { k: kr.dataSync() as Float32Array, v: vr.dataSync() as Float32Array };
    const outs = step.rows.map((r, i) => {
      // The span (its mask) is shared by every layer: made in the step's scope, not the sequence's.
      const span = step.span(i, r.count, r.position, this.#window);
      // A scope per sequence: its attention's scores and copies are freed as soon as its output is
      // made, not at the end of the step — 64 sequences of 2048 tokens otherwise hold gigabytes
      // of them at once, past what the wasm heap can grow to.
      return tidy(() => {
        const { k: K, v: V } = this.#extend(r, kr, vr, host);
        const q = slice(qr, [r.start, 0, 0], [r.count, c.numAttentionHeads, hd]) as Tensor3D;
        return attend(q, K, V, span, this.#attentionMatmul, r.position + r.count);
      });
    });
    const attended = add(h, this.#o.forward(concat(outs, 0) as Tensor2D)) as Tensor2D;
    const [gate, up] = split(this.#gateUp.forward(rmsNorm(attended, this.#postNorm, c.rmsNormEps)), 2, 1) as [Tensor2D, Tensor2D];
    // SwiGLU with SiLU(x) = x · sigmoid(x) (`ACT2FN["silu"]`).
    return add(attended, this.#down.forward(mul(mul(gate, sigmoid(gate)), up) as Tensor2D)) as Tensor2D;
  }

  /**
   * The sequence's cache for this layer with the step's rows appended after its first `r.position`
   * positions (head-major, see kv-cache.ts), kept past the step's tidy. `host`: the step's keys and
   * values on the host where the backend writes caches in place, else null.
   */
  #extend(r: StepRows, k: Tensor3D, v: Tensor3D, host: { k: Float32Array; v: Float32Array } | null): LayerCache {
    const old = r.seq.kv[this.index];
    const length = r.position;
    const append = (cache: Tensor3D | undefined, device: Tensor3D, values: Float32Array | undefined): Tensor3D => {
      if (values === undefined || this.#write === undefined) {
        return appendByConcat(cache, length, slice(device, [r.start, 0, 0], [r.count, device.shape[1], device.shape[2]]) as Tensor3D);
      }
      return appendInPlace(cache, length, { values, start: r.start, count: r.count }, this.#kvShape, this.#write);
    };
    const next = { k: keep(append(old?.k, k, host?.k)), v: keep(append(old?.v, v, host?.v)) };
    r.seq.kv[this.index] = next;
    if (old !== undefined) dispose([old.k, old.v].filter((t, i) => t !== (i === 0 ? next.k : next.v)));
    return next;
  }

  dispose(): void {
    for (const l of [this.#qkv, this.#o, this.#gateUp, this.#down]) l.dispose();
  }
}
