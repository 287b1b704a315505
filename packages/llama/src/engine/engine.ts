import { checkStrength, describeValue, isLoRAError, type LoRAAdapter, LoRAError, type LoRARuntime, type MixTerm } from '@lora/core';
import { adapterStart } from '../invocation.js';
import type { CausalLM, Chunk } from '../model.js';
import { Sequence } from '../sequence.js';
import type { Tokenizer } from '../tokenizer.js';
import type { GenerationDelta, RequestHandle } from './handle.js';
import { PrefixCache, type PrefixContext } from './prefix-cache.js';
import { LiveRequest } from './request.js';
import { resolveSampling, type SamplingParams } from './sampling.js';

/** What an {@link Engine} is made from: the model, an optional tokenizer and the scheduler's limits (vLLM's names). */
export interface EngineOptions {
  /**
   * The model every step runs one forward of. Requests name adapters registered in its runtime,
   * and its config's `maxPositionEmbeddings` is every request's context length.
   */
  readonly model: CausalLM;
  /** Needed for text prompts, text deltas and stop strings; without it, prompts are token ids and text is ''. */
  readonly tokenizer?: Tokenizer;
  /** Requests running at once (vLLM `--max-num-seqs`; default 16). */
  readonly maxNumSeqs?: number;
  /** Tokens per step, prefill and decode together (vLLM `--max-num-batched-tokens`; default min(2048, maxNumTokens)). */
  readonly maxNumBatchedTokens?: number;
  /** Requests that may wait; past it `add` throws E_CAPACITY (default 1024). */
  readonly maxQueue?: number;
  /** KV-cache tokens the engine plans for (default maxNumSeqs × context length): `stats().kvCacheUsage` is measured against it. */
  readonly maxKvTokens?: number;
  /** Called after every step (progress bars, metrics, benchmarks). */
  readonly onStep?: (step: StepInfo) => void;
  /**
   * Called once when the engine stops for good ({@link Engine.error}): a server reports itself
   * unhealthy or exits so that its supervisor restarts it, as vLLM does on `EngineDeadError`.
   */
  readonly onFailure?: (error: LoRAError) => void;
  /**
   * Steps in which requests that arrived later may be admitted ahead of a waiting request (its
   * adapters did not fit, or others' adapters were already in device slots) before admission
   * stops at it, first come first served, until it runs (default 16). Bounds how long a request for
   * a cold adapter can be passed over by a stream of requests for resident ones.
   */
  readonly maxBypassSteps?: number;
  /**
   * A baseline for measuring LoRA's cost: requests are scheduled exactly as with their adapters
   * (the same admission and batches), but every step runs on the base model (no adapter applied).
   */
  readonly withoutLoRA?: boolean;
  /**
   * Automatic prefix caching (vLLM `--enable-prefix-caching`): when a prompt's prefill ends, the
   * keys and values of its whole blocks are kept, and a later prompt that starts with the same
   * blocks — under the same adapter, or on the base model before an activated LoRA's invocation —
   * prefills only the rest. Its tokens are the same bits as without the cache. Default false.
   */
  readonly enablePrefixCaching?: boolean;
  /** Tokens the prefix cache may hold, all layers' keys and values of each (default maxKvTokens). */
  readonly prefixCacheTokens?: number;
  /** Tokens per cached block (vLLM `--block-size`, default 16): a prompt reuses whole blocks only. */
  readonly blockSize?: number;
}

/** What one engine step did. */
export interface StepInfo {
  /** Requests in the step's batch, decoding or prefilling. */
  readonly requests: number;
  /** Of those, requests that were decoding (one token each); the others ran a chunk of their prompt. */
  readonly decodeTokens: number;
  /** Prompt tokens prefilled in this step. */
  readonly prefillTokens: number;
  /** Wall time of the step (setBatch, forward, sampling). */
  readonly ms: number;
  /** Requests that finished in this step. */
  readonly finished: number;
}

/** One request for {@link Engine.add}: a prompt, the adapter to apply, and how to sample. */
export interface GenerateRequest {
  /** Text (needs a tokenizer; special tokens added as the tokenizer does) or token ids. */
  readonly prompt: string | readonly number[] | Int32Array;
  /** A registered adapter id (`runtime.adapters.register`), or null / undefined for the base model. */
  readonly adapter?: string | null;
  /**
   * A weighted mix of registered adapters instead of `adapter` (issue #19, vLLM RFC 51940):
   * `[{ id: 'style', weight: 0.7 }, { id: 'domain', weight: 0.5 }]` adds each adapter's LoRA term
   * times its weight, in the same batch as every other request (`AdapterManager.setBatch`). The
   * adapters must fit in device slots together; DoRA adapters cannot be mixed.
   */
  readonly adapters?: readonly MixTerm[];
  /**
   * The adapter's strength for this request (vLLM issue 52733's per-request `lora_scale`): a finite
   * number multiplying its LoRA term in every layer, served in the same mixed batch without another
   * slot. Default 1 (the adapter as trained); 0 gives the base model's tokens.
   */
  readonly loraScale?: number;
  /** How to sample and when to stop (vLLM `SamplingParams` meanings). Default: greedy, up to the context length. */
  readonly sampling?: SamplingParams;
  /** Default: `req-<n>`. */
  readonly id?: string;
}

/**
 * A snapshot of an {@link Engine} ({@link Engine.stats}): its queue, its batch, KV-cache occupancy and
 * counters since it was made. The server exports it as vLLM's metrics (`vllm:num_requests_waiting`,
 * `vllm:lora_requests_info`, …).
 */
export interface EngineStats {
  /** Requests added but not admitted yet (waiting for a sequence slot, the token budget or an adapter slot). */
  readonly waiting: number;
  /** Requests admitted and not finished: prefilling or decoding, each holding a KV cache. */
  readonly running: number;
  /** Distinct adapter ids of running requests (base-model requests add none). */
  readonly runningAdapters: readonly string[];
  /** Distinct adapter ids of waiting requests: the adapters admission still has to find device slots for. */
  readonly waitingAdapters: readonly string[];
  /** Tokens held in the running requests' KV caches. */
  readonly kvTokens: number;
  /** `kvTokens` over {@link Engine.maxKvTokens}, capped at 1 (a fraction, 0–1, not a percentage). */
  readonly kvCacheUsage: number;
  /** Steps run so far (a step whose forward failed is not counted). */
  readonly steps: number;
  /** Prompt tokens prefilled so far, all requests together. */
  readonly promptTokens: number;
  /** Tokens sampled so far, all requests together. */
  readonly generatedTokens: number;
  /** Prompt tokens looked up in the prefix cache so far (vLLM `prefix_cache_queries`; 0 without it). */
  readonly prefixCacheQueries: number;
  /** Of those, tokens served from the cache instead of prefilled (vLLM `prefix_cache_hits`). */
  readonly prefixCacheHits: number;
  /** Tokens the prefix cache holds now (at most `prefixCacheTokens`). */
  readonly prefixCacheTokens: number;
}

/**
 * `add` on a full queue: E_CAPACITY like a prompt too long for the context, but a caller should
 * retry it later rather than change it (an HTTP server answers 429 for this one, 400 for the other).
 */
export class QueueFullError extends LoRAError {
  /** The engine's {@link Engine.maxQueue}: how many requests were already waiting. */
  readonly maxQueue: number;
  constructor(maxQueue: number) {
    super('E_CAPACITY', `the queue holds maxQueue = ${maxQueue} waiting requests; try again later`);
    this.name = 'QueueFullError';
    this.maxQueue = maxQueue;
  }
}

/** How often a stalled engine (no request can be admitted) looks again. */
const IDLE_POLL_MS = 25;

const nextTick = (): Promise<void> =>
  new Promise((resolve) => (typeof setImmediate === 'function' ? setImmediate(resolve) : setTimeout(resolve, 0)));

const positiveInt = (v: unknown, name: string, fallback: number): number => {
  if (v === undefined) return fallback;
  if (!Number.isSafeInteger(v) || (v as number) < 1)
    throw new LoRAError('E_CONFIG', `${name} must be a positive integer, got ${describeValue(v)}`);
  return v as number;
};

/**
 * Continuous batching over a `CausalLM` (vLLM's scheduler, simplified): every step runs one
 * forward for all running requests — one decode token each, plus the prompts of newly admitted
 * requests (split across steps when they exceed the token budget) — each request with its own
 * adapter. A request is admitted when a sequence slot is free and its adapter can get a device
 * slot beside the adapters already running (and pinned ones); otherwise it waits, and requests
 * behind it whose adapters fit may go first — those sharing the running batch's adapters before
 * those needing another slot — for at most `maxBypassSteps` steps, after which admission waits for
 * it. A request never fails because of another's adapter.
 *
 * Determinism: with temperature 0 a request's tokens depend only on its prompt and adapter — every
 * kernel computes each token's row the same way whatever else is in the batch (the conformance
 * suite checks it on every backend) and each request samples from its own generator.
 */
export class Engine {
  /** The model every step runs on ({@link EngineOptions.model}). */
  readonly model: CausalLM;
  /** Undefined when none was given: then prompts must be token ids, delta text is '' and stop strings are refused. */
  readonly tokenizer: Tokenizer | undefined;
  /** Requests running at once, at most (default 16). */
  readonly maxNumSeqs: number;
  /** Token budget of one step: decodes first, then prompt chunks (between maxNumSeqs and the runtime's maxNumTokens). */
  readonly maxNumBatchedTokens: number;
  /** Requests waiting at most; `add` past it throws {@link QueueFullError} (default 1024). */
  readonly maxQueue: number;
  /** Context length in tokens, prompt and generated together: the model config's `maxPositionEmbeddings`. */
  readonly maxModelLen: number;
  /**
   * KV-cache tokens the engine plans for (default maxNumSeqs × maxModelLen): only the denominator of
   * {@link EngineStats.kvCacheUsage}, never a limit on admission.
   */
  readonly maxKvTokens: number;
  /** {@link EngineOptions.maxBypassSteps}. */
  readonly maxBypassSteps: number;
  readonly #runtime: LoRARuntime;
  readonly #eos: ReadonlySet<number>;
  readonly #waiting: LiveRequest[] = [];
  readonly #running: LiveRequest[] = [];
  readonly #ids = new Set<string>();
  #counter = 0;
  /** Arrival order of requests, for the bypass count. */
  #arrivals = 0;
  #looping = false;
  #closed = false;
  #steps = 0;
  #promptTokens = 0;
  #generatedTokens = 0;
  readonly #idle: (() => void)[] = [];
  #wake: (() => void) | undefined;
  readonly #onStep: ((step: StepInfo) => void) | undefined;
  readonly #onFailure: ((error: LoRAError) => void) | undefined;
  #error: LoRAError | undefined;
  readonly #withoutLoRA: boolean;
  readonly #prefixCache: PrefixCache | null;

  constructor(options: EngineOptions) {
    const model = options?.model;
    if (model === null || typeof model !== 'object' || typeof model.forward !== 'function') {
      throw new LoRAError('E_CONFIG', `Engine needs { model: CausalLM }, got ${describeValue(model)}`);
    }
    this.model = model;
    this.tokenizer = options.tokenizer;
    this.#runtime = model.runtime;
    const c = model.config;
    this.maxModelLen = c.maxPositionEmbeddings;
    this.maxNumSeqs = positiveInt(options.maxNumSeqs, 'maxNumSeqs', 16);
    this.maxNumBatchedTokens = positiveInt(
      options.maxNumBatchedTokens,
      'maxNumBatchedTokens',
      Math.min(2048, this.#runtime.config.maxNumTokens),
    );
    if (this.maxNumBatchedTokens > this.#runtime.config.maxNumTokens || this.maxNumBatchedTokens < this.maxNumSeqs) {
      throw new LoRAError(
        'E_CONFIG',
        `maxNumBatchedTokens (${this.maxNumBatchedTokens}) must be at least maxNumSeqs (${this.maxNumSeqs}) and at most the runtime's maxNumTokens (${this.#runtime.config.maxNumTokens})`,
      );
    }
    this.maxQueue = positiveInt(options.maxQueue, 'maxQueue', 1024);
    this.maxKvTokens = positiveInt(options.maxKvTokens, 'maxKvTokens', this.maxNumSeqs * this.maxModelLen);
    this.maxBypassSteps = positiveInt(options.maxBypassSteps, 'maxBypassSteps', 16);
    this.#eos = new Set([...c.eosTokenIds, ...(options.tokenizer?.eosTokenIds ?? [])]);
    this.#onStep = options.onStep;
    this.#onFailure = options.onFailure;
    this.#withoutLoRA = options.withoutLoRA === true;
    if (options.enablePrefixCaching !== undefined && typeof options.enablePrefixCaching !== 'boolean')
      throw new LoRAError('E_CONFIG', `enablePrefixCaching must be a boolean, got ${describeValue(options.enablePrefixCaching)}`);
    const cacheTokens = positiveInt(options.prefixCacheTokens, 'prefixCacheTokens', this.maxKvTokens);
    const blockSize = positiveInt(options.blockSize, 'blockSize', 16);
    this.#prefixCache = options.enablePrefixCaching === true ? new PrefixCache(cacheTokens, blockSize) : null;
  }

  /**
   * Queues a request; returns at once. Everything about the request is checked here (prompt,
   * adapter, sampling, room in the context and in the queue), so a refused request throws a
   * LoRAError and never reaches a batch.
   */
  add(request: GenerateRequest): RequestHandle {
    if (this.#error !== undefined) throw this.#error;
    if (this.#closed) throw new LoRAError('E_DISPOSED', 'Engine.add: the engine was closed');
    if (request === null || typeof request !== 'object') {
      throw new LoRAError('E_CONFIG', `Engine.add expects { prompt, adapter?, sampling?, id? }, got ${describeValue(request)}`);
    }
    const { vocabSize } = this.model.config;
    const sampling = resolveSampling(request.sampling, vocabSize);
    const promptIds = this.#promptIds(request.prompt);
    const adapter = request.adapter ?? null;
    const mix = request.adapters === undefined ? null : this.#runtime.adapters.checkMix(request.adapters, 'adapters');
    if (mix !== null && adapter !== null) {
      throw new LoRAError('E_CONFIG', `give either adapter (${describeValue(adapter)}) or adapters (a mix), not both`);
    }
    if (adapter !== null) {
      if (typeof adapter !== 'string')
        throw new LoRAError('E_CONFIG', `adapter must be an adapter id or null, got ${describeValue(adapter)}`);
      if (this.#runtime.adapters.get(adapter) === undefined) {
        throw new LoRAError('E_NOT_FOUND', `adapter ${describeValue(adapter)} is not registered (runtime.adapters.register it first)`);
      }
    }
    // Activated LoRA: from the last invocation in the prompt on (PEFT), found once per request.
    const start = adapter === null ? 0 : adapterStart(promptIds, this.#runtime.adapters.get(adapter)?.invocationTokens);
    const loraScale = checkStrength(request.loraScale ?? 1, 'loraScale');
    if (sampling.stop.length > 0 && this.tokenizer === undefined) {
      throw new LoRAError('E_CONFIG', 'sampling parameter stop needs a tokenizer (Engine({ tokenizer }))');
    }
    const room = this.maxModelLen - promptIds.length;
    if (room < 1) {
      throw new LoRAError(
        'E_CAPACITY',
        `the prompt has ${promptIds.length} tokens; this model's context is ${this.maxModelLen} tokens (max_position_embeddings), which must leave room for at least one generated token`,
      );
    }
    if (sampling.maxTokens !== undefined && sampling.maxTokens > room) {
      throw new LoRAError(
        'E_CAPACITY',
        `this model's context is ${this.maxModelLen} tokens; the request asks for ${promptIds.length + sampling.maxTokens} (${promptIds.length} in the prompt, maxTokens ${sampling.maxTokens})`,
      );
    }
    if (this.#waiting.length >= this.maxQueue) throw new QueueFullError(this.maxQueue);
    const id = request.id ?? `req-${++this.#counter}`;
    if (typeof id !== 'string' || id.length === 0 || id.length > 256) {
      throw new LoRAError('E_CONFIG', `request id must be a string of 1 to 256 characters, got ${describeValue(id)}`);
    }
    if (this.#ids.has(id)) throw new LoRAError('E_CONFIG', `a request with id ${describeValue(id)} is already in the engine`);
    const live = new LiveRequest({
      id,
      arrival: ++this.#arrivals,
      adapter,
      mix,
      adapterStart: start,
      loraScale,
      promptIds,
      sampling,
      maxTokens: sampling.maxTokens ?? room,
      tokenizer: this.tokenizer,
      eos: this.#eos,
    });
    this.#ids.add(id);
    this.#waiting.push(live);
    void live.result.then(() => this.#ids.delete(id));
    this.#kick();
    return {
      id,
      result: live.result,
      abort: () => {
        live.aborted = true;
        this.#kick();
      },
      [Symbol.asyncIterator]: () => live.queue[Symbol.asyncIterator](),
    };
  }

  /** Aborts a request by id (no-op when it is unknown or finished). */
  abort(id: string): void {
    for (const r of [...this.#waiting, ...this.#running]) if (r.id === id) r.aborted = true;
    this.#kick();
  }

  /** The engine's state now, as a new object each call (the server's `/metrics` reads one per scrape). */
  stats(): EngineStats {
    const adapters = (rs: readonly LiveRequest[]) => [...new Set(rs.flatMap((r) => r.adapterIds))];
    const kvTokens = this.#running.reduce((n, r) => n + (r.seq?.length ?? 0), 0);
    const cache = this.#prefixCache?.counters;
    return {
      waiting: this.#waiting.length,
      running: this.#running.length,
      runningAdapters: adapters(this.#running),
      waitingAdapters: adapters(this.#waiting),
      kvTokens,
      kvCacheUsage: Math.min(1, kvTokens / this.maxKvTokens),
      steps: this.#steps,
      promptTokens: this.#promptTokens,
      generatedTokens: this.#generatedTokens,
      prefixCacheQueries: cache?.queries ?? 0,
      prefixCacheHits: cache?.hits ?? 0,
      prefixCacheTokens: cache?.tokens ?? 0,
    };
  }

  /**
   * The backend failure that stopped the engine (vLLM's `EngineDeadError`), or undefined while it
   * works. A step whose forward throws anything but a LoRAError — a wasm module that aborted, a
   * lost GPU device — leaves the backend's state (KV caches, the wasm heap) untrustworthy: every
   * request then fails with this E_BACKEND error and `add` throws it. A LoRAError from a step
   * fails only that step's requests (the library checks before it changes state).
   */
  get error(): LoRAError | undefined {
    return this.#error;
  }

  /** Resolves when no request is waiting or running. */
  drain(): Promise<void> {
    if (!this.#looping && this.#waiting.length === 0 && this.#running.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Aborts every request and refuses new ones; resolves once the last step has finished (the prefix cache freed). */
  async close(): Promise<void> {
    this.#closed = true;
    for (const r of [...this.#waiting, ...this.#running]) r.aborted = true;
    this.#kick();
    await this.drain();
    this.#prefixCache?.clear();
  }

  /**
   * Frees every cached prefix (vLLM's `reset_prefix_cache`): running requests keep their own
   * caches; later prompts prefill in full until the cache fills again. A no-op without caching.
   */
  resetPrefixCache(): void {
    this.#prefixCache?.clear();
  }

  /**
   * What a request's keys and values are computed with, read when it is admitted: the adapter
   * objects (a re-registered id is another adapter), weights and strength; the base model for
   * base requests and a `withoutLoRA` engine.
   */
  #prefixContext(r: LiveRequest): PrefixContext {
    if (this.#withoutLoRA || r.adapterIds.length === 0) return { key: '', from: Infinity };
    const term = (id: string, weight: number) => `${serialOf(this.#runtime.adapters.get(id) as LoRAAdapter)}*${weight}`;
    const terms = r.mix === null ? [term(r.adapter as string, 1)] : r.mix.map((t) => term(t.id, t.weight));
    return { key: `${terms.join('+')}@${r.loraScale}`, from: r.adapterStart };
  }

  #promptIds(prompt: GenerateRequest['prompt']): Int32Array {
    const { vocabSize } = this.model.config;
    let ids: ArrayLike<number>;
    if (typeof prompt === 'string') {
      if (this.tokenizer === undefined)
        throw new LoRAError('E_CONFIG', 'a text prompt needs a tokenizer (Engine({ tokenizer })); pass token ids otherwise');
      ids = this.tokenizer.encode(prompt, { addSpecialTokens: true });
    } else if (Array.isArray(prompt) || prompt instanceof Int32Array) {
      if (prompt.length > this.maxModelLen) {
        throw new LoRAError('E_CAPACITY', `the prompt has ${prompt.length} tokens; this model's context is ${this.maxModelLen} tokens`);
      }
      ids = prompt;
    } else {
      throw new LoRAError('E_CONFIG', `prompt must be text or an array of token ids, got ${describeValue(prompt)}`);
    }
    const out = Int32Array.from(ids as ArrayLike<number>);
    if (out.length === 0) throw new LoRAError('E_CONFIG', 'the prompt is empty');
    for (let i = 0; i < out.length; i++) {
      const t = (ids as ArrayLike<number>)[i];
      if (typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t >= vocabSize) {
        throw new LoRAError('E_INDEX', `prompt[${i}] is ${describeValue(t)}; token ids must be integers in [0, ${vocabSize})`);
      }
    }
    return out;
  }

  #kick(): void {
    this.#wake?.();
    if (this.#looping) return;
    this.#looping = true;
    // Start after the current task: requests added together are planned together.
    void Promise.resolve().then(() => this.#loop());
  }

  async #loop(): Promise<void> {
    try {
      while (this.#waiting.length > 0 || this.#running.length > 0) {
        const worked = await this.#step();
        // Let callers add and abort requests between steps. A step that could do nothing (every
        // slot pinned by adapters no waiting request uses) waits for a change instead of spinning:
        // an add or abort wakes it at once, anything else (an unpin) is seen on the next poll.
        if (worked) await nextTick();
        else
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, IDLE_POLL_MS);
            this.#wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
        this.#wake = undefined;
      }
      // Idle: release the batch mapping, so the last batch's adapters can be removed or evicted.
      if (!this.#runtime.punica.isDisposed) {
        try {
          this.#runtime.adapters.setBatch([], []);
        } catch (err) {
          if (this.#error === undefined) throw err; // else: the backend that failed may not free anything
        }
      }
    } finally {
      this.#looping = false;
      for (const resolve of this.#idle.splice(0)) resolve();
    }
  }

  /** Stops the engine for good after a backend failure (see {@link Engine.error}): every request fails with it. */
  #stop(err: unknown): void {
    this.#error = new LoRAError(
      'E_BACKEND',
      `the engine stopped after a backend failure in step ${this.#steps + 1}: ${describeValue((err as Error)?.message ?? err)}; restart it (a new model and engine)`,
      { cause: err },
    );
    for (const r of [...this.#waiting, ...this.#running]) {
      try {
        r.fail('error', this.#error);
      } catch {
        // Its KV cache lived on the backend that failed and cannot be freed; the request has its result.
      }
    }
    this.#waiting.length = 0;
    this.#running.length = 0;
    this.#onFailure?.(this.#error);
  }

  /** Drops aborted requests and those whose adapter left the runtime, before a step is planned. */
  #prune(): void {
    for (const list of [this.#waiting, this.#running]) {
      for (let i = list.length - 1; i >= 0; i--) {
        const r = list[i] as LiveRequest;
        if (r.aborted) r.fail('abort');
        else {
          const gone = r.adapterIds.find((id) => this.#runtime.adapters.get(id) === undefined);
          if (gone !== undefined)
            r.fail('error', new LoRAError('E_NOT_FOUND', `adapter ${describeValue(gone)} was removed while request ${r.id} needed it`));
        }
        if (r.finished) list.splice(i, 1);
      }
    }
  }

  /**
   * Who admission tries this step, in order: the waiting requests up to the first one passed over
   * in `maxBypassSteps` steps (nothing behind it is admitted before it — unless its adapters could
   * not fit even alone, beside the pinned ones); among them first those whose adapters the running
   * batch already uses (admitting them needs no other slot and no upload), then the rest, each
   * group first come first served. It reads only the engine's own state, so a `withoutLoRA`
   * engine admits exactly as one with adapters.
   */
  #admissionOrder(running: ReadonlySet<string>): LiveRequest[] {
    const stop = this.#waiting.findIndex((r) => r.bypassed >= this.maxBypassSteps && this.#fits(new Set(r.adapterIds)));
    const candidates = stop < 0 ? [...this.#waiting] : this.#waiting.slice(0, stop + 1);
    const shares = (r: LiveRequest) => r.adapterIds.every((id) => running.has(id));
    return [...candidates.filter(shares), ...candidates.filter((r) => !shares(r))];
  }

  /** A waiting request that arrived before one admitted this step was passed over once more. */
  #countBypasses(admitted: readonly LiveRequest[]): void {
    const latest = admitted.reduce((n, r) => Math.max(n, r.arrival), -1);
    for (const r of this.#waiting) if (r.arrival < latest) r.bypassed++;
  }

  /** Can the adapters in `set` all have device slots at once (beside pinned adapters outside the set)? */
  #fits(set: ReadonlySet<string>): boolean {
    const { slots } = this.#runtime.adapters;
    const pinnedOutside = slots.filter((id) => id !== null && !set.has(id) && this.#runtime.adapters.isPinned(id)).length;
    return set.size <= this.#runtime.config.maxLoras - pinnedOutside;
  }

  /** One step; false when there was nothing it could run. */
  async #step(): Promise<boolean> {
    this.#prune();
    let budget = this.maxNumBatchedTokens;
    // `from`: the chunk's first position in its sequence (where an activated LoRA may start).
    const plan: { request: LiveRequest; tokens: Int32Array; decode: boolean; from: number }[] = [];
    // Decodes first (one token each), then prompts in progress, then new requests.
    for (const r of this.#running) {
      if (r.prefillDone) {
        plan.push({ request: r, tokens: Int32Array.of(r.lastToken), decode: true, from: r.seq?.length ?? 0 });
        budget--;
      }
    }
    for (const r of this.#running) {
      if (!r.prefillDone && budget > 0) {
        const n = Math.min(budget, r.promptIds.length - r.prefilled);
        plan.push({ request: r, tokens: r.promptIds.subarray(r.prefilled, r.prefilled + n), decode: false, from: r.prefilled });
        budget -= n;
      }
    }
    const adapters = new Set(this.#running.flatMap((r) => r.adapterIds));
    const admitted: LiveRequest[] = [];
    for (const r of this.#admissionOrder(new Set(adapters))) {
      if (budget <= 0 || this.#running.length >= this.maxNumSeqs) break;
      // Waits for a slot; later requests whose adapters fit may go first (within maxBypassSteps).
      if (r.adapterIds.some((id) => !adapters.has(id)) && !this.#fits(new Set([...adapters, ...r.adapterIds]))) continue;
      for (const id of r.adapterIds) adapters.add(id);
      this.#waiting.splice(this.#waiting.indexOf(r), 1);
      this.#running.push(r);
      admitted.push(r);
      r.seq = new Sequence();
      r.admitted();
      if (this.#prefixCache !== null) {
        r.prefix = this.#prefixContext(r);
        r.prefilled = r.cachedTokens = this.#prefixCache.restore(r.promptIds, r.prefix, r.seq);
      }
      const n = Math.min(budget, r.promptIds.length - r.prefilled);
      plan.push({ request: r, tokens: r.promptIds.subarray(r.prefilled, r.prefilled + n), decode: false, from: r.prefilled });
      budget -= n;
    }
    this.#countBypasses(admitted);
    if (plan.length === 0) return this.#waiting.length === 0;
    const t0 = performance.now();
    let logits: Float32Array;
    try {
      const strengths = plan.map((p) => p.request.loraScale);
      // Where in each chunk the adapter starts (activated LoRA; 0 for every other request).
      const firsts = plan.map((p) => Math.min(p.tokens.length, Math.max(0, p.request.adapterStart - p.from)));
      this.#runtime.adapters.setBatch(
        plan.map((p) => (this.#withoutLoRA ? null : (p.request.mix ?? p.request.adapter))),
        plan.map((p) => p.tokens.length),
        strengths.every((f) => f === 1) ? undefined : strengths,
        firsts.every((k) => k === 0) ? undefined : firsts,
      );
      const chunks: Chunk[] = plan.map((p) => ({ seq: p.request.seq as Sequence, tokens: p.tokens }));
      logits = await this.model.forward(chunks);
    } catch (err) {
      if (isLoRAError(err)) {
        // The step's requests cannot go on (their caches may be half-written); others are unaffected.
        for (const p of plan) p.request.fail('error', err);
        this.#prune();
      } else this.#stop(err);
      return true;
    }
    this.#steps++;
    const V = this.model.config.vocabSize;
    let prefillTokens = 0;
    let finished = 0;
    plan.forEach((p, i) => {
      const r = p.request;
      if (!r.prefillDone) {
        r.prefilled += p.tokens.length;
        prefillTokens += p.tokens.length;
        if (!r.prefillDone) return; // more of the prompt next step
        if (r.prefix !== null) this.#prefixCache?.store(r.promptIds, r.prefix, r.seq as Sequence);
      }
      this.#generatedTokens++;
      r.accept(logits.subarray(i * V, (i + 1) * V), this.maxModelLen - (r.seq?.length ?? 0) - 1);
      if (r.finished) finished++;
    });
    this.#promptTokens += prefillTokens;
    this.#prune();
    this.#onStep?.({
      requests: plan.length,
      decodeTokens: plan.filter((p) => p.decode).length,
      prefillTokens,
      ms: performance.now() - t0,
      finished,
    });
    return true;
  }
}

/** A number per adapter object for prefix-cache keys: an id removed and registered again with other weights gets a new one. */
const SERIALS = new WeakMap<LoRAAdapter, number>();
let serials = 0;
function serialOf(adapter: LoRAAdapter): number {
  let n = SERIALS.get(adapter);
  if (n === undefined) SERIALS.set(adapter, (n = ++serials));
  return n;
}

/** Collects a request's deltas into one array (tests, simple callers). */
export async function collect(handle: AsyncIterable<GenerationDelta>): Promise<GenerationDelta[]> {
  const out: GenerationDelta[] = [];
  for await (const d of handle) out.push(d);
  return out;
}
