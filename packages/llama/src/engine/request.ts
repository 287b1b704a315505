import type { LoRAError, MixTerm } from '@lora/core';
import { DecodeStream } from '../detokenize.js';
import type { Sequence } from '../sequence.js';
import { StopStringMatcher } from '../stop.js';
import type { Tokenizer } from '../tokenizer.js';
import { DeltaQueue, type FinishReason, type GenerationResult } from './handle.js';
import type { PrefixContext } from './prefix-cache.js';
import { type ResolvedSampling, Sampler } from './sampling.js';

/**
 * One request's life inside the engine: its prompt, where its prefill is, its KV cache, what it
 * generated, its text decoding and stop-string state, and the queue its consumer reads. The
 * engine owns it; nothing here talks to the model.
 */
export class LiveRequest {
  readonly id: string;
  readonly adapter: string | null;
  /** The weighted mix it asked for instead of one adapter (`GenerateRequest.adapters`), or null. */
  readonly mix: readonly MixTerm[] | null;
  /** Every adapter it needs in a device slot: its adapter, or its mix's adapters (none for the base model). */
  readonly adapterIds: readonly string[];
  /**
   * The first position of its sequence the adapter applies to: 0, or for an activated LoRA the
   * start of the last invocation in the prompt (Infinity when the prompt has none).
   */
  readonly adapterStart: number;
  /** The adapter's strength for this request (`GenerateRequest.loraScale`, 1 by default). */
  readonly loraScale: number;
  readonly promptIds: Int32Array;
  readonly sampling: ResolvedSampling;
  readonly maxTokens: number;
  readonly queue = new DeltaQueue();
  readonly result: Promise<GenerationResult>;
  /** Its place in arrival order (the engine's count of `add` calls). */
  readonly arrival: number;
  /** Steps in which a request that arrived after it was admitted while it waited. */
  bypassed = 0;
  /** Prompt tokens already in the KV cache (chunked prefill moves it forward). */
  prefilled = 0;
  /** Prompt tokens restored from the engine's prefix cache at admission (vLLM `num_cached_tokens`). */
  cachedTokens = 0;
  /** Its prefix-cache context, set at admission when the engine caches prefixes. */
  prefix: PrefixContext | null = null;
  seq: Sequence | null = null;
  readonly output: number[] = [];
  aborted = false;
  finished = false;
  readonly #sampler: Sampler;
  readonly #decode: DecodeStream | null;
  readonly #stops: StopStringMatcher | null;
  readonly #eos: ReadonlySet<number>;
  #text = '';
  #settle!: (r: GenerationResult) => void;
  readonly #addedAt = performance.now();
  #admittedAt: number | undefined;
  #firstTokenAt: number | undefined;

  constructor(args: {
    id: string;
    arrival: number;
    adapter: string | null;
    mix: readonly MixTerm[] | null;
    adapterStart: number;
    loraScale: number;
    promptIds: Int32Array;
    sampling: ResolvedSampling;
    maxTokens: number;
    tokenizer: Tokenizer | undefined;
    eos: ReadonlySet<number>;
  }) {
    this.id = args.id;
    this.arrival = args.arrival;
    this.adapter = args.adapter;
    this.mix = args.mix;
    this.adapterStart = args.adapterStart;
    this.adapterIds = args.mix !== null ? args.mix.map((t) => t.id) : args.adapter === null ? [] : [args.adapter];
    this.loraScale = args.loraScale;
    this.promptIds = args.promptIds;
    this.sampling = args.sampling;
    this.maxTokens = args.maxTokens;
    this.#sampler = new Sampler(args.sampling);
    this.#eos = args.eos;
    this.#decode = args.tokenizer ? new DecodeStream(args.tokenizer, { promptIds: args.promptIds }) : null;
    this.#stops =
      args.sampling.stop.length > 0
        ? new StopStringMatcher(args.sampling.stop, { includeStopString: args.sampling.includeStopStrInOutput })
        : null;
    this.result = new Promise((resolve) => {
      this.#settle = resolve;
    });
  }

  get prefillDone(): boolean {
    return this.prefilled === this.promptIds.length;
  }

  /** The token to feed at the next decode step. */
  get lastToken(): number {
    return this.output[this.output.length - 1] as number;
  }

  admitted(): void {
    this.#admittedAt = performance.now();
  }

  /**
   * Samples the next token from this request's logits row and reports it; ends the request when it
   * hits EOS, a stop token, a stop string, maxTokens or the context length (`contextLeft` = 0).
   */
  accept(row: Float32Array, contextLeft: number): void {
    const token = this.#sampler.sample(row);
    this.#firstTokenAt ??= performance.now();
    this.output.push(token);
    let text = this.#decode?.push(token) ?? '';
    let finish: FinishReason | undefined;
    let stoppedBy: string | number | undefined;
    if (this.#stops) {
      const r = this.#stops.push(text);
      text = r.text;
      if (r.stop !== undefined) [finish, stoppedBy] = ['stop', r.stop];
    }
    if (finish === undefined && !this.sampling.ignoreEos && this.#eos.has(token)) [finish, stoppedBy] = ['stop', token];
    if (finish === undefined && this.sampling.stopTokenIds.has(token)) [finish, stoppedBy] = ['stop', token];
    if (finish === undefined && (this.output.length >= this.maxTokens || contextLeft <= 0)) finish = 'length';
    if (finish !== undefined && stoppedBy === undefined) text += this.#flushText();
    this.#text += text;
    this.queue.push({ tokenIds: [token], text, ...(finish ? { finishReason: finish } : {}) });
    if (finish) this.#end(finish, stoppedBy);
  }

  /** Ends the request early (abort, or an error of its step). */
  fail(reason: 'abort' | 'error', error?: LoRAError): void {
    if (this.finished) return;
    this.queue.push({ tokenIds: [], text: '', finishReason: reason });
    this.#end(reason, undefined, error);
  }

  /** Text still held (a partial character, a possible stop-string prefix) once nothing more will come. */
  #flushText(): string {
    let rest = this.#decode?.flush() ?? '';
    if (this.#stops) {
      const r = this.#stops.push(rest);
      rest = r.stop === undefined ? r.text + this.#stops.flush() : r.text;
    }
    return rest;
  }

  #end(finishReason: FinishReason, stoppedBy: string | number | undefined, error?: LoRAError): void {
    this.finished = true;
    const seq = this.seq;
    this.seq = null;
    const now = performance.now();
    this.#settle({
      id: this.id,
      adapter: this.adapter,
      ...(this.mix !== null ? { mix: this.mix } : {}),
      promptIds: Array.from(this.promptIds),
      cachedTokens: this.cachedTokens,
      tokenIds: [...this.output],
      text: this.#text,
      finishReason,
      ...(stoppedBy !== undefined ? { stoppedBy } : {}),
      ...(error !== undefined ? { error } : {}),
      timings: {
        queuedMs: (this.#admittedAt ?? now) - this.#addedAt,
        firstTokenMs: (this.#firstTokenAt ?? now) - this.#addedAt,
        totalMs: now - this.#addedAt,
      },
    });
    // Last, so that the request has its result even when freeing its KV cache throws (a backend that died, Engine.error).
    seq?.dispose();
  }
}
