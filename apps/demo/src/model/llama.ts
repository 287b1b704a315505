import { LoRAEmbedding, LoRALinear, LoRALogits, type LoRARuntime, MergedLoRALinear } from '@lora/core';
import * as tf from '@tensorflow/tfjs-core';
import { headDim, kvWidth, type ModelConfig } from './config.js';
import type { BaseWeights } from './weights.js';

/**
 * One request's state: its KV cache per layer, head-major (`[kvHeads, len, headDim]`: attention reads
 * it as is, no transpose per step), and its length.
 */
export class Sequence {
  length = 0;
  readonly kv: Array<{ k: tf.Tensor3D | null; v: tf.Tensor3D | null }>;

  constructor(layers: number) {
    this.kv = Array.from({ length: layers }, () => ({ k: null, v: null }));
  }

  dispose(): void {
    for (const c of this.kv) tf.dispose([c.k, c.v].filter((t): t is tf.Tensor3D => t !== null));
  }
}

/** Tokens to feed one sequence in this step (a whole prompt at prefill, one token at decode). */
export interface Chunk {
  seq: Sequence;
  tokens: Int32Array;
}

export interface StepOutput {
  /** Greedy next token per chunk. */
  next: number[];
  /** Gap between the two largest logits per chunk (a near-tie explains a flipped argmax). */
  margins: number[];
}

/**
 * A Llama-shaped decoder on our LoRA layers: embedding, per layer RMSNorm → packed q/k/v (GQA) →
 * rotary → causal attention with a KV cache → o_proj, RMSNorm → packed gate/up → SwiGLU → down,
 * final norm and lm_head on the last token of each sequence. Every linear layer runs the whole
 * mixed batch (one shrink + one expand); only attention is per sequence.
 */
export class LlamaModel {
  readonly config: ModelConfig;
  readonly #embed: LoRAEmbedding;
  readonly #qkv: MergedLoRALinear[] = [];
  readonly #o: LoRALinear[] = [];
  readonly #gateUp: MergedLoRALinear[] = [];
  readonly #down: LoRALinear[] = [];
  readonly #lmHead: LoRALogits;
  readonly #norms: tf.Tensor1D[];
  readonly #owned: tf.Tensor[] = [];
  readonly #cos: Float32Array;
  readonly #sin: Float32Array;

  constructor(rt: LoRARuntime, config: ModelConfig, weights: BaseWeights) {
    this.config = config;
    const c = config;
    const w = (names: string[], rows: number, cols: number): tf.Tensor2D => {
      const data = new Float32Array(rows * cols);
      let at = 0;
      for (const n of names) {
        const part = weights.modules.get(n) as Float32Array;
        data.set(part, at);
        at += part.length;
      }
      const t = tf.tensor2d(data, [rows, cols]);
      this.#owned.push(t);
      return t;
    };
    const kv = kvWidth(c);
    this.#embed = new LoRAEmbedding(rt, { module: 'model.embed_tokens', weight: w(['model.embed_tokens'], c.vocab, c.hidden) });
    for (let i = 0; i < c.layers; i++) {
      const a = `model.layers.${i}.self_attn`;
      const m = `model.layers.${i}.mlp`;
      const qkv = [`${a}.q_proj`, `${a}.k_proj`, `${a}.v_proj`];
      this.#qkv.push(
        new MergedLoRALinear(rt, { modules: qkv, outputSizes: [c.hidden, kv, kv], weight: w(qkv, c.hidden + 2 * kv, c.hidden) }),
      );
      this.#o.push(new LoRALinear(rt, { module: `${a}.o_proj`, weight: w([`${a}.o_proj`], c.hidden, c.hidden) }));
      const gu = [`${m}.gate_proj`, `${m}.up_proj`];
      this.#gateUp.push(
        new MergedLoRALinear(rt, {
          modules: gu,
          outputSizes: [c.intermediate, c.intermediate],
          weight: w(gu, 2 * c.intermediate, c.hidden),
        }),
      );
      this.#down.push(new LoRALinear(rt, { module: `${m}.down_proj`, weight: w([`${m}.down_proj`], c.hidden, c.intermediate) }));
    }
    this.#lmHead = new LoRALogits(rt, { module: 'lm_head', weight: w(['lm_head'], c.vocab, c.hidden) });
    this.#norms = weights.norms.map((n) => tf.tensor1d(n));
    this.#owned.push(...this.#norms);
    // Rotary tables (rotate-half form), one row per position.
    const half = headDim(c) / 2;
    this.#cos = new Float32Array(c.maxPositions * half);
    this.#sin = new Float32Array(c.maxPositions * half);
    for (let p = 0; p < c.maxPositions; p++) {
      for (let i = 0; i < half; i++) {
        const angle = p / c.ropeTheta ** ((2 * i) / headDim(c));
        this.#cos[p * half + i] = Math.cos(angle);
        this.#sin[p * half + i] = Math.sin(angle);
      }
    }
  }

  /** Runs one batch step (the adapter mapping was set with `adapters.setBatch`) and extends the KV caches. */
  async step(chunks: readonly Chunk[]): Promise<StepOutput> {
    const c = this.config;
    const hd = headDim(c);
    const half = hd / 2;
    const T = chunks.reduce((n, ch) => n + ch.tokens.length, 0);
    const tokens = new Int32Array(T);
    const cos = new Float32Array(T * half);
    const sin = new Float32Array(T * half);
    const lastRows = new Int32Array(chunks.length);
    let t = 0;
    chunks.forEach((ch, i) => {
      if (ch.seq.length + ch.tokens.length > c.maxPositions) throw new RangeError(`sequence longer than maxPositions = ${c.maxPositions}`);
      for (let j = 0; j < ch.tokens.length; j++, t++) {
        tokens[t] = ch.tokens[j] as number;
        const p = ch.seq.length + j;
        cos.set(this.#cos.subarray(p * half, (p + 1) * half), t * half);
        sin.set(this.#sin.subarray(p * half, (p + 1) * half), t * half);
      }
      lastRows[i] = t - 1;
    });
    const logits = tf.tidy(() => {
      const cosT = tf.tensor3d(cos, [T, 1, half]);
      const sinT = tf.tensor3d(sin, [T, 1, half]);
      const rope = (x: tf.Tensor3D): tf.Tensor3D => {
        const heads = x.shape[1];
        const x1 = tf.slice(x, [0, 0, 0], [T, heads, half]);
        const x2 = tf.slice(x, [0, 0, half], [T, heads, half]);
        return tf.concat([tf.sub(tf.mul(x1, cosT), tf.mul(x2, sinT)), tf.add(tf.mul(x2, cosT), tf.mul(x1, sinT))], 2) as tf.Tensor3D;
      };
      let h = this.#embed.forward(tf.tensor1d(tokens, 'int32'));
      for (let l = 0; l < c.layers; l++) {
        const qkv = (this.#qkv[l] as MergedLoRALinear).forward(this.#rmsNorm(h, 2 * l));
        const [q, k, v] = tf.split(qkv, [c.hidden, kvWidth(c), kvWidth(c)], 1);
        const qr = rope(tf.reshape(q as tf.Tensor, [T, c.heads, hd]));
        const kr = rope(tf.reshape(k as tf.Tensor, [T, c.kvHeads, hd]));
        const vr = tf.reshape(v as tf.Tensor, [T, c.kvHeads, hd]) as tf.Tensor3D;
        const outs: tf.Tensor[] = [];
        let r0 = 0;
        for (const ch of chunks) {
          const n = ch.tokens.length;
          const cache = ch.seq.kv[l] as { k: tf.Tensor3D | null; v: tf.Tensor3D | null };
          const kNew = tf.transpose(tf.slice(kr, [r0, 0, 0], [n, c.kvHeads, hd]), [1, 0, 2]) as tf.Tensor3D;
          const vNew = tf.transpose(tf.slice(vr, [r0, 0, 0], [n, c.kvHeads, hd]), [1, 0, 2]) as tf.Tensor3D;
          const K = tf.keep(cache.k ? tf.concat([cache.k, kNew], 1) : kNew);
          const V = tf.keep(cache.v ? tf.concat([cache.v, vNew], 1) : vNew);
          cache.k?.dispose();
          cache.v?.dispose();
          cache.k = K;
          cache.v = V;
          outs.push(this.#attend(tf.slice(qr, [r0, 0, 0], [n, c.heads, hd]), K, V, ch.seq.length));
          r0 += n;
        }
        h = tf.add(h, (this.#o[l] as LoRALinear).forward(tf.concat(outs, 0) as tf.Tensor2D));
        const [g, u] = tf.split((this.#gateUp[l] as MergedLoRALinear).forward(this.#rmsNorm(h, 2 * l + 1)), 2, 1) as [
          tf.Tensor2D,
          tf.Tensor2D,
        ];
        h = tf.add(h, (this.#down[l] as LoRALinear).forward(tf.mul(tf.mul(g, tf.sigmoid(g)), u) as tf.Tensor2D));
      }
      const last = this.#rmsNorm(tf.gather(h, tf.tensor1d(lastRows, 'int32')) as tf.Tensor2D, 2 * c.layers);
      return this.#lmHead.forward(last);
    });
    // Async read: GPU backends would stall (or, in Node, cannot) read back synchronously.
    const out = (await logits.data()) as Float32Array;
    logits.dispose();
    for (const ch of chunks) ch.seq.length += ch.tokens.length;
    const next: number[] = [];
    const margins: number[] = [];
    for (let i = 0; i < chunks.length; i++) {
      let best = 0;
      let second = Number.NEGATIVE_INFINITY;
      const row = out.subarray(i * c.vocab, (i + 1) * c.vocab);
      for (let v = 1; v < c.vocab; v++) {
        if ((row[v] as number) > (row[best] as number)) {
          second = row[best] as number;
          best = v;
        } else if ((row[v] as number) > second) second = row[v] as number;
      }
      next.push(best);
      margins.push((row[best] as number) - second);
    }
    return { next, margins };
  }

  #rmsNorm(x: tf.Tensor2D, which: number): tf.Tensor2D {
    const ms = tf.mean(tf.square(x), -1, true);
    return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, this.config.rmsEps))), this.#norms[which] as tf.Tensor1D) as tf.Tensor2D;
  }

  /**
   * Causal GQA attention of n new queries (positions p0…) over the whole cache (`[kvHeads, L, hd]`).
   * The query heads that share a KV head are stacked as rows of one matmul per KV head, so the
   * cache is read once per step rather than copied out per query head.
   */
  #attend(q: tf.Tensor3D, K: tf.Tensor3D, V: tf.Tensor3D, p0: number): tf.Tensor2D {
    const [n, heads, hd] = q.shape;
    const [kvHeads, L] = K.shape;
    const group = heads / kvHeads;
    // [n, heads, hd] → [kvHeads, n·group, hd]; row i·group + g is query i of head kvh·group + g.
    const qg = tf.reshape(tf.transpose(tf.reshape(q, [n, kvHeads, group, hd]), [1, 0, 2, 3]), [kvHeads, n * group, hd]);
    const mask = new Float32Array(n * group * L);
    for (let i = 0; i < n; i++) {
      for (let g = 0; g < group; g++) mask.fill(-1e9, (i * group + g) * L + p0 + i + 1, (i * group + g + 1) * L);
    }
    const scores = tf.add(tf.mul(tf.matMul(qg, K, false, true), 1 / Math.sqrt(hd)), tf.tensor2d(mask, [n * group, L]));
    const out = tf.matMul(tf.softmax(scores), V); // [kvHeads, n·group, hd]
    return tf.reshape(tf.transpose(tf.reshape(out, [kvHeads, n, group, hd]), [1, 0, 2, 3]), [n, heads * hd]) as tf.Tensor2D;
  }

  dispose(): void {
    for (const layer of [this.#embed, ...this.#qkv, ...this.#o, ...this.#gateUp, ...this.#down, this.#lmHead]) layer.dispose();
    tf.dispose(this.#owned);
  }
}
