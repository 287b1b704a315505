import { describeValue, LoRAError } from '@lora/core';

/** Options of the {@link StopStringMatcher} constructor. */
export interface StopStringOptions {
  /** Keep the stop string at the end of the text (vLLM `include_stop_str_in_output`). Default false. */
  readonly includeStopString?: boolean;
}

/** What {@link StopStringMatcher.push} returns for one delta. */
export interface StopResult {
  /** Text that is final: it cannot be part of a stop string any more. */
  readonly text: string;
  /** The stop string that ended the text, once one has. */
  readonly stop: string | undefined;
}

/**
 * Stop strings over streamed text deltas (a stop string can span several tokens and deltas).
 * Each push returns the text that can be shown: everything before a stop string, less a suffix
 * that could still become the start of one, which is held back until the next delta settles it.
 * The text ends at the first stop string to be completed (the occurrence that ends earliest;
 * between two that end together, the one that starts earlier), whatever the deltas' boundaries
 * are: vLLM `v1/engine/detokenizer.py` `check_stop_strings` checks after every token in the same way.
 */
export class StopStringMatcher {
  readonly #stops: readonly string[];
  readonly #include: boolean;
  #held = '';
  #stop: string | undefined;

  constructor(stops: readonly string[], options: StopStringOptions = {}) {
    if (!Array.isArray(stops) || stops.some((s) => typeof s !== 'string' || s.length === 0)) {
      throw new LoRAError('E_CONFIG', `stop strings must be a list of non-empty strings, got ${describeValue(stops)}`);
    }
    this.#stops = [...new Set(stops)];
    this.#include = options.includeStopString ?? false;
  }

  /** The stop string found, if any: after it, pushes return no text. */
  get stop(): string | undefined {
    return this.#stop;
  }

  /**
   * Adds the next text delta. Returns the text that is now safe to show and, once a stop string
   * has completed, that stop string; the text then ends before it (or after it, with
   * `includeStopString`) and every later push returns no text.
   */
  push(delta: string): StopResult {
    if (typeof delta !== 'string') throw new LoRAError('E_CONFIG', `StopStringMatcher.push expects a string, got ${describeValue(delta)}`);
    if (this.#stop !== undefined) return { text: '', stop: this.#stop };
    const buffer = this.#held + delta;
    let best: { start: number; end: number; stop: string } | undefined;
    for (const stop of this.#stops) {
      // The first occurrence of a stop string is the one that ends first. The buffer starts at
      // the held suffix: no occurrence can start in text already returned (it would have been held).
      const start = buffer.indexOf(stop);
      if (start < 0) continue;
      const end = start + stop.length;
      if (!best || end < best.end || (end === best.end && start < best.start)) best = { start, end, stop };
    }
    if (best) {
      this.#stop = best.stop;
      this.#held = '';
      return { text: buffer.slice(0, this.#include ? best.end : best.start), stop: best.stop };
    }
    const keep = this.#partialMatch(buffer);
    this.#held = buffer.slice(buffer.length - keep);
    return { text: buffer.slice(0, buffer.length - keep), stop: undefined };
  }

  /** Releases the held-back text when the generation ends for another reason (EOS, length). */
  flush(): string {
    const text = this.#held;
    this.#held = '';
    return text;
  }

  /** Length of the longest suffix of `text` that is a proper prefix of a stop string. */
  #partialMatch(text: string): number {
    let longest = 0;
    for (const stop of this.#stops) {
      for (let k = Math.min(stop.length - 1, text.length); k > longest; k--) {
        if (text.endsWith(stop.slice(0, k))) {
          longest = k;
          break;
        }
      }
    }
    return longest;
  }
}
