import type { LoRAError, MixTerm } from '@lora/core';

/** Why a request ended (OpenAI's `finish_reason`, plus 'abort' and 'error'). */
export type FinishReason = 'stop' | 'length' | 'abort' | 'error';

/** What one engine step added to a request. */
export interface GenerationDelta {
  /** New token ids (usually one). */
  readonly tokenIds: readonly number[];
  /** New text, final: it cannot change with later tokens (held back while a character or a stop string is incomplete). */
  readonly text: string;
  /** Set on the request's last delta. */
  readonly finishReason?: FinishReason;
}

/** Everything a request produced, once it has ended ({@link RequestHandle.result}). */
export interface GenerationResult {
  /** The request's id: {@link GenerateRequest.id}, or the `req-<n>` the engine gave it. */
  readonly id: string;
  /** The adapter id it ran with, or null for the base model (and for a mix). */
  readonly adapter: string | null;
  /** The weighted mix it ran with (`GenerateRequest.adapters`), when it asked for one. */
  readonly mix?: readonly MixTerm[];
  /** The prompt as the model saw it: token ids (a text prompt tokenized with special tokens). */
  readonly promptIds: readonly number[];
  /** Prompt tokens whose keys and values came from the engine's prefix cache (0 without it; OpenAI `cached_tokens`). */
  readonly cachedTokens: number;
  /** Every generated token id in order, including the EOS or stop token that ended it. */
  readonly tokenIds: readonly number[];
  /** The deltas' text joined ('' without a tokenizer); a matched stop string is cut off unless `includeStopStrInOutput`. */
  readonly text: string;
  /** 'stop' (EOS, a stop token or a stop string), 'length' (maxTokens or the context length), 'abort' or 'error'. */
  readonly finishReason: FinishReason;
  /** The stop string or stop token that ended it, if one did. */
  readonly stoppedBy?: string | number;
  /** Set when finishReason is 'error'. */
  readonly error?: LoRAError;
  /** Latencies in milliseconds (`performance.now()`), each measured from {@link Engine.add}. */
  readonly timings: {
    /** Time from add() to admission into a running batch. */
    readonly queuedMs: number;
    /** Time from add() to the first generated token. */
    readonly firstTokenMs: number;
    /** Time from add() to the end. */
    readonly totalMs: number;
  };
}

/** A request in flight: iterate it for deltas, await `result` for the whole, `abort()` to stop it. */
export interface RequestHandle extends AsyncIterable<GenerationDelta> {
  /** The request's id, for {@link Engine.abort} and to match results to requests. */
  readonly id: string;
  /** Settles once, when the request ends; it never rejects (a failed request has finishReason 'error'). */
  readonly result: Promise<GenerationResult>;
  /** Ends the request at the next step boundary (finish reason 'abort'); its slot and KV cache are freed. */
  abort(): void;
}

/**
 * The consumer side of a request: deltas are queued as steps produce them and handed to whoever
 * iterates (one iterator; deltas are not replayed). `result` settles once, when the request ends.
 */
export class DeltaQueue implements AsyncIterable<GenerationDelta> {
  readonly #queue: GenerationDelta[] = [];
  #waiter: ((v: IteratorResult<GenerationDelta>) => void) | undefined;
  #ended = false;

  push(delta: GenerationDelta): void {
    if (this.#ended) return;
    if (delta.finishReason !== undefined) this.#ended = true;
    const waiter = this.#waiter;
    if (waiter) {
      this.#waiter = undefined;
      waiter({ value: delta, done: false });
    } else this.#queue.push(delta);
  }

  [Symbol.asyncIterator](): AsyncIterator<GenerationDelta> {
    let finished = false;
    return {
      next: () => {
        if (finished) return Promise.resolve({ value: undefined, done: true });
        const delta = this.#queue.shift();
        if (delta !== undefined) {
          if (delta.finishReason !== undefined) finished = true;
          return Promise.resolve({ value: delta, done: false });
        }
        return new Promise((resolve) => {
          this.#waiter = (r) => {
            if (!r.done && r.value.finishReason !== undefined) finished = true;
            resolve(r);
          };
        });
      },
    };
  }
}
