import { describeValue, LoRAError } from '@lora/core';
import type { Tokenizer } from './tokenizer.js';

/** Options of the {@link DecodeStream} constructor. */
export interface DecodeStreamOptions {
  /** Leave special tokens out of the text (default true: a chat's `<|im_end|>` is not text). */
  readonly skipSpecialTokens?: boolean;
  /**
   * The prompt's ids: its last few tokens are decoded along with the first generated ones, so a
   * decoder that treats the start of a text differently (SentencePiece strips the first space)
   * gives the generated text the spacing it has after the prompt.
   */
  readonly promptIds?: ArrayLike<number>;
}

/** Prompt tokens kept as context: vLLM `detokenizer_utils.py` `INITIAL_INCREMENTAL_DETOKENIZATION_OFFSET`. */
const PROMPT_CONTEXT = 5;
/**
 * Tokens held back waiting for the rest of a character. A UTF-8 character has at most 4 bytes and
 * a token at least one, so a window this long that still ends in U+FFFD is invalid bytes (or a
 * real U+FFFD), not a character in progress: it is let out rather than held forever.
 */
const MAX_HELD_TOKENS = 16;

/**
 * Streaming detokenization: push generated ids one at a time, get the new text. Decodes a short
 * window (vLLM `detokenizer_utils.py` `detokenize_incrementally`; tokenizers' Rust `DecodeStream`):
 * the text of `ids[prefix:]` minus that of `ids[prefix:read]`, so that merges of bytes into
 * characters and decoders that look at neighbouring tokens come out as in a full decode, at a cost
 * that does not grow with the length of the text. A window whose text ends in U+FFFD ends inside a
 * multi-byte character: nothing is emitted until the character is complete (as transformers'
 * `TextStreamer` and vLLM do). The concatenated deltas plus `flush()` equal
 * `tokenizer.decode(ids, { skipSpecialTokens, cleanUpTokenizationSpaces: false })`; the space
 * clean-up is a whole-text rewrite that streaming does not apply (vLLM does not either).
 */
export class DecodeStream {
  readonly #tokenizer: Tokenizer;
  readonly #skipSpecialTokens: boolean;
  #ids: number[] = [];
  #prefix = 0;
  #read = 0;
  #prefixText = '';

  constructor(tokenizer: Tokenizer, options: DecodeStreamOptions = {}) {
    if (tokenizer === null || typeof tokenizer !== 'object' || typeof tokenizer.decode !== 'function') {
      throw new LoRAError('E_CONFIG', `DecodeStream needs a Tokenizer, got ${describeValue(tokenizer)}`);
    }
    this.#tokenizer = tokenizer;
    this.#skipSpecialTokens = options.skipSpecialTokens ?? true;
    if (options.promptIds !== undefined) {
      const prompt = Array.from(options.promptIds);
      this.#ids = prompt.slice(Math.max(0, prompt.length - PROMPT_CONTEXT));
      for (const [i, id] of this.#ids.entries()) this.#check(id, `promptIds[${prompt.length - this.#ids.length + i}]`);
      this.#read = this.#ids.length;
      this.#prefixText = this.#decode(this.#ids);
    }
  }

  /** Adds one generated token; returns the text that became final (often '', never a partial character). */
  push(id: number): string {
    this.#check(id, 'token id');
    this.#ids.push(id);
    const text = this.#decode(this.#ids.slice(this.#prefix));
    const held = this.#ids.length - this.#read;
    if ((text.length > this.#prefixText.length && !text.endsWith('\uFFFD')) || held >= MAX_HELD_TOKENS) return this.#advance(text);
    return '';
  }

  /** The text still held back (an incomplete character, as U+FFFD), at the end of a generation. */
  flush(): string {
    if (this.#read === this.#ids.length) return '';
    return this.#advance(this.#decode(this.#ids.slice(this.#prefix)));
  }

  #advance(text: string): string {
    const delta = text.slice(this.#prefixText.length);
    // The new window starts where the text was last complete; older ids are no longer needed.
    this.#ids = this.#ids.slice(this.#read);
    this.#prefix = 0;
    this.#read = this.#ids.length;
    this.#prefixText = this.#decode(this.#ids);
    return delta;
  }

  #decode(ids: number[]): string {
    return this.#tokenizer.decode(ids, { skipSpecialTokens: this.#skipSpecialTokens, cleanUpTokenizationSpaces: false });
  }

  #check(id: unknown, what: string): void {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
      throw new LoRAError('E_CONFIG', `DecodeStream: ${what} must be a non-negative integer, got ${describeValue(id)}`);
    }
  }
}
