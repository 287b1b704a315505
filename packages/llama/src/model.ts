import { describeValue, isLoRAError, LoRAEmbedding, LoRAError, LoRALogits, type LoRARuntime } from '@lora/core';
import {
  dispose,
  gather,
  type Tensor,
  type Tensor1D,
  type Tensor2D,
  type Tensor3D,
  tensor1d,
  tensor2d,
  tensor3d,
  tidy,
} from '@tensorflow/tfjs-core';
import { spans } from './attention.js';
import type { Architecture, ModelConfig } from './config.js';
import { DecoderLayer, type StepContext, type StepRows } from './decoder-layer.js';
import { EMBED_TOKENS, FINAL_NORM, LM_HEAD } from './modules.js';
import { rmsNorm } from './rms-norm.js';
import { inverseFrequencies, rotaryAngles } from './rope.js';
import { checkLive, failSequence, Sequence } from './sequence.js';
import { type WeightMap, WeightTaker } from './weights.js';

/** Tokens to feed one sequence in a step: a whole prompt at prefill, one token per decode step. */
export interface Chunk {
  /** The sequence whose KV cache the tokens extend; it may appear only once per step. */
  readonly seq: Sequence;
  /** Token ids in `[0, vocabSize)`, at least one; the cached length plus these may not exceed `maxPositionEmbeddings`. */
  readonly tokens: Int32Array;
}

/** Options of the {@link CausalLM} constructors and {@link createCausalLM}. */
export interface CausalLMOptions {
  /**
   * Delete each tensor from `weights` (which must then be a mutable Map) as soon as the model
   * holds it, so the caller's float32 copies can be collected while the model is built (what the
   * checkpoint loader does). Without it the map is left as it was. Either way the model may use
   * the arrays as its tensors' storage (tfjs' CPU backend does not copy): do not modify them.
   */
  readonly releaseWeights?: boolean;
}

/**
 * A Llama-family decoder on a `LoRARuntime`: embedding, decoder layers, final RMSNorm, lm_head
 * (transformers `LlamaForCausalLM`, `MistralForCausalLM`, `Qwen2ForCausalLM`). Every projection,
 * the embedding and lm_head are LoRA layers registered with `runtime.adapters` under their PEFT
 * module names, so one batch serves many adapters. With tied embeddings lm_head multiplies by the
 * embedding table itself (one copy of the weight).
 */
export class CausalLM {
  /** The config the model was built from; it fixes every weight shape and the KV cache layout. */
  readonly config: ModelConfig;
  /** The LoRA runtime whose adapters and batch mapping (`setBatch`) apply to every forward. */
  readonly runtime: LoRARuntime;
  readonly #embed: LoRAEmbedding;
  readonly #layers: DecoderLayer[] = [];
  readonly #finalNorm: Tensor1D;
  readonly #lmHead: LoRALogits;
  readonly #owned: Tensor[] = [];
  readonly #invFreq: Float32Array;
  #disposed = false;

  /**
   * Builds the model from float32 weights by Hugging Face tensor name (see `checkpointTensors`),
   * layer by layer. Throws E_SHAPE for a missing or mis-sized tensor; on any failure everything
   * created so far is disposed.
   */
  constructor(runtime: LoRARuntime, config: ModelConfig, weights: WeightMap, options: CausalLMOptions = {}) {
    if (typeof config?.architecture !== 'string' || !Array.isArray(config.layerTypes)) {
      throw new LoRAError(
        'E_CONFIG',
        `config must be a ModelConfig from parseModelConfig or loadModelConfig, got ${describeValue(config)}`,
      );
    }
    if (typeof runtime?.adapters?.addLayer !== 'function') {
      throw new LoRAError('E_CONFIG', `runtime must be a LoRARuntime from createLoRA, got ${describeValue(runtime)}`);
    }
    this.config = config;
    this.runtime = runtime;
    this.#invFreq = inverseFrequencies(config);
    const take = new WeightTaker(config, weights, options.releaseWeights === true, runtime.backend.copiesHostArrays === true);
    const made: { dispose(): void }[] = [];
    try {
      const table = this.#own(tensor2d(take.take(`${EMBED_TOKENS}.weight`), [config.vocabSize, config.hiddenSize]));
      this.#embed = new LoRAEmbedding(runtime, { module: EMBED_TOKENS, weight: table });
      made.push(this.#embed);
      for (let i = 0; i < config.numHiddenLayers; i++) {
        this.#layers.push(new DecoderLayer(runtime, config, i, take, this.#owned));
        made.push(this.#layers[i] as DecoderLayer);
      }
      this.#finalNorm = this.#own(tensor1d(take.take(`${FINAL_NORM}.weight`)));
      // Tied: the embedding table itself ([V, D], which the embedding's gather needs). Untied: in
      // the layout the backend multiplies fastest, transposed on the host (see `transposeInto`).
      const inOut = !config.tieWordEmbeddings && runtime.backend.weightLayout === 'in-out';
      const head = config.tieWordEmbeddings
        ? table
        : this.#own(
            inOut
              ? tensor2d(take.transposed(take.take(`${LM_HEAD}.weight`), config.vocabSize, config.hiddenSize), [
                  config.hiddenSize,
                  config.vocabSize,
                ])
              : tensor2d(take.take(`${LM_HEAD}.weight`), [config.vocabSize, config.hiddenSize]),
          );
      this.#lmHead = new LoRALogits(runtime, { module: LM_HEAD, weight: head, layout: inOut ? 'in-out' : 'out-in' });
    } catch (err) {
      for (const m of made) m.dispose();
      dispose(this.#owned);
      throw err;
    }
  }

  /** True once {@link CausalLM.dispose} has run; `forward` then throws E_DISPOSED. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /**
   * Runs one step for a batch of sequences and returns the logits `[chunks, vocab]` of each chunk's
   * last token (row i for chunk i), extending every sequence's KV cache by its tokens. The caller
   * has already called `runtime.adapters.setBatch(adapterIds, tokensPerChunk)` for exactly these
   * chunks in this order. Everything is checked before anything changes; if the computation itself
   * fails part way, the sequences of the batch are discarded (E_DISPOSED on their next use).
   */
  async forward(chunks: readonly Chunk[]): Promise<Float32Array> {
    if (this.#disposed) throw new LoRAError('E_DISPOSED', 'CausalLM.forward: the model was disposed');
    const { rows, tokens, positions } = this.#plan(chunks);
    const { cos, sin } = rotaryAngles(this.#invFreq, positions);
    const half = this.config.headDim / 2;
    let logits: Tensor2D;
    try {
      logits = tidy(() => {
        const step: StepContext = {
          rows,
          tokens: tokens.length,
          cos: tensor3d(cos, [tokens.length, 1, half]),
          sin: tensor3d(sin, [tokens.length, 1, half]),
          span: spans(),
        };
        let h = this.#embed.forward(tensor1d(tokens, 'int32'));
        for (const layer of this.#layers) h = layer.forward(h, step);
        const last = gather(
          h,
          tensor1d(
            Int32Array.from(rows, (r) => r.start + r.count - 1),
            'int32',
          ),
        ) as Tensor2D;
        return this.#lmHead.forward(rmsNorm(last, this.#finalNorm, this.config.rmsNormEps));
      });
    } catch (err) {
      const reason = (err as Error)?.message ?? describeValue(err);
      for (const r of rows) failSequence(r.seq, reason);
      throw err;
    }
    for (const r of rows) r.seq.length += r.count;
    try {
      // Async read: GPU backends would stall (or, in Node, cannot) read back synchronously.
      return (await logits.data()) as Float32Array;
    } finally {
      logits.dispose();
    }
  }

  /** Validates a step's chunks against the model, the sequences and the runtime's batch mapping. */
  #plan(chunks: readonly Chunk[]): { rows: StepRows[]; tokens: Int32Array; positions: Int32Array } {
    const c = this.config;
    if (!Array.isArray(chunks) || chunks.length === 0) {
      throw new LoRAError('E_SHAPE', `forward expects a non-empty array of { seq, tokens } chunks, got ${describeValue(chunks)}`);
    }
    const rows: StepRows[] = [];
    const seen = new Set<Sequence>();
    let total = 0;
    chunks.forEach((ch, i) => {
      const where = `forward: chunks[${i}]`;
      if (!(ch?.seq instanceof Sequence)) throw new LoRAError('E_CONFIG', `${where}.seq must be a Sequence, got ${describeValue(ch?.seq)}`);
      if (!(ch.tokens instanceof Int32Array) || ch.tokens.length === 0) {
        throw new LoRAError('E_SHAPE', `${where}.tokens must be a non-empty Int32Array, got ${describeValue(ch.tokens)}`);
      }
      checkLive(ch.seq, where);
      if (seen.has(ch.seq)) throw new LoRAError('E_CONFIG', `${where}: the same Sequence appears twice in one step`);
      seen.add(ch.seq);
      this.#checkCache(ch.seq, where);
      const bad = ch.tokens.findIndex((t: number) => t < 0 || t >= c.vocabSize);
      if (bad >= 0) {
        throw new LoRAError(
          'E_INDEX',
          `${where}.tokens[${bad}] is ${ch.tokens[bad]}; token ids must be in [0, ${c.vocabSize}) (vocab_size)`,
        );
      }
      const end = ch.seq.length + ch.tokens.length;
      if (end > c.maxPositionEmbeddings) {
        throw new LoRAError(
          'E_CAPACITY',
          `${where}: the sequence would reach ${end} tokens (${ch.seq.length} cached + ${ch.tokens.length} new); this model takes at most max_position_embeddings = ${c.maxPositionEmbeddings}`,
        );
      }
      rows.push({ seq: ch.seq, start: total, count: ch.tokens.length, position: ch.seq.length });
      total += ch.tokens.length;
    });
    this.#checkBatch(chunks.length, total);
    const tokens = new Int32Array(total);
    const positions = new Int32Array(total);
    rows.forEach((r, i) => {
      tokens.set((chunks[i] as Chunk).tokens, r.start);
      for (let j = 0; j < r.count; j++) positions[r.start + j] = r.position + j;
    });
    return { rows, tokens, positions };
  }

  /** A sequence's cache must be empty (length 0) or hold `length` positions for every layer of this model. */
  #checkCache(seq: Sequence, where: string): void {
    const c = this.config;
    if (seq.kv.length === 0 && seq.length === 0) return;
    const want = [c.numKeyValueHeads, seq.length, c.headDim];
    // Positions past `length` are room to grow into (kv-cache.ts), never read.
    const fits = (t: Tensor3D) =>
      t && !t.isDisposed && t.shape.length === 3 && t.shape[0] === want[0] && t.shape[1] >= seq.length && t.shape[2] === want[2];
    const ok =
      Number.isSafeInteger(seq.length) &&
      seq.length > 0 &&
      seq.kv.length === c.numHiddenLayers &&
      seq.kv.every((l) => l && fits(l.k) && fits(l.v));
    if (!ok) {
      throw new LoRAError(
        'E_SHAPE',
        `${where}: the sequence's cache does not fit this model: length ${describeValue(seq.length)} and ${seq.kv.length} layer caches; expected ${c.numHiddenLayers} layers of K and V [${want.join(', ')}] (at least ${seq.length} positions; or an empty cache with length 0)`,
      );
    }
  }

  /** The runtime's batch mapping (setBatch) must have one request per chunk and their token counts. */
  #checkBatch(requests: number, tokens: number): void {
    let meta: { numTokens: number; sampler: { numTokens: number } } | undefined;
    try {
      meta = this.runtime.punica.meta;
    } catch (err) {
      // No batch yet reads as a mismatch below; a disposed runtime is reported as such.
      if (isLoRAError(err, 'E_DISPOSED')) throw err;
      meta = undefined;
    }
    if (meta?.numTokens !== tokens || meta.sampler.numTokens !== requests) {
      throw new LoRAError(
        'E_SHAPE',
        `forward has ${requests} chunks with ${tokens} tokens, but the runtime's batch mapping has ${meta ? `${meta.sampler.numTokens} requests with ${meta.numTokens} tokens` : 'not been set'}; call runtime.adapters.setBatch(adapterIds, tokensPerChunk) for these chunks first`,
      );
    }
  }

  #own<T extends Tensor>(t: T): T {
    this.#owned.push(t);
    return t;
  }

  /** Frees every tensor and LoRA layer the model owns (its layers leave the runtime). Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const layer of [this.#embed, ...this.#layers, this.#lmHead]) layer.dispose();
    dispose(this.#owned);
    this.#owned.length = 0;
  }
}

function checkArchitecture(config: ModelConfig, expected: Architecture): void {
  if (config?.architecture !== expected) {
    throw new LoRAError(
      'E_CONFIG',
      `${expected} needs a config of that architecture, got ${describeValue(config?.architecture)}; use CausalLM or loadModel`,
    );
  }
}

/** transformers `LlamaForCausalLM`. */
export class LlamaForCausalLM extends CausalLM {
  constructor(runtime: LoRARuntime, config: ModelConfig, weights: WeightMap, options?: CausalLMOptions) {
    checkArchitecture(config, 'LlamaForCausalLM');
    super(runtime, config, weights, options);
  }
}

/** transformers `MistralForCausalLM`: Llama with a sliding window on every layer. */
export class MistralForCausalLM extends CausalLM {
  constructor(runtime: LoRARuntime, config: ModelConfig, weights: WeightMap, options?: CausalLMOptions) {
    checkArchitecture(config, 'MistralForCausalLM');
    super(runtime, config, weights, options);
  }
}

/** transformers `Qwen2ForCausalLM`: Llama with q/k/v biases and optional per-layer sliding windows. */
export class Qwen2ForCausalLM extends CausalLM {
  constructor(runtime: LoRARuntime, config: ModelConfig, weights: WeightMap, options?: CausalLMOptions) {
    checkArchitecture(config, 'Qwen2ForCausalLM');
    super(runtime, config, weights, options);
  }
}

const ARCHITECTURE_CLASSES: ReadonlyMap<Architecture, typeof CausalLM> = new Map<Architecture, typeof CausalLM>([
  ['LlamaForCausalLM', LlamaForCausalLM],
  ['MistralForCausalLM', MistralForCausalLM],
  ['Qwen2ForCausalLM', Qwen2ForCausalLM],
]);

/** The model class of a config's architecture (what loadModel builds). */
export function createCausalLM(runtime: LoRARuntime, config: ModelConfig, weights: WeightMap, options?: CausalLMOptions): CausalLM {
  const Class = ARCHITECTURE_CLASSES.get(config?.architecture);
  if (Class === undefined)
    throw new LoRAError('E_CONFIG', `config.architecture ${describeValue(config?.architecture)} is not one of the supported ones`);
  return new Class(runtime, config, weights, options);
}
