import { LoRAError } from '@lora/core';
import { dispose, type Tensor3D } from '@tensorflow/tfjs-core';

/**
 * One layer's cache, head-major `[num_key_value_heads, capacity, head_dim]`: the sequence's first
 * `length` positions, then room that later steps write into and nothing reads (on backends that
 * keep tensors in host memory and write them in place: `hostMemory` and `overwrite`; elsewhere
 * capacity = length). A restored cache may be exactly `length` positions long.
 */
export interface LayerCache {
  /** Keys after the rotary embedding, `[num_key_value_heads, capacity ≥ length, head_dim]`. */
  k: Tensor3D;
  /** Values, `[num_key_value_heads, capacity ≥ length, head_dim]`. */
  v: Tensor3D;
}

/** Why a sequence can no longer be used (a forward that failed half way left its caches inconsistent). */
const failures = new WeakMap<Sequence, string>();

/**
 * One request's state: its KV cache per layer and its length (the position of its next token).
 * Create one per request, pass it to `forward` with the request's tokens, `dispose()` it when the
 * request ends. `length` and `kv` are public so a cache can be restored (prefix caching,
 * benchmarks); `forward` checks them against each other and the model before using them.
 */
export class Sequence {
  /** Tokens whose keys and values the cache holds. */
  length = 0;
  /** Per layer; empty until the first forward. */
  readonly kv: LayerCache[] = [];
  #disposed = false;

  /** True once disposed, by {@link Sequence.dispose} or because a forward failed part way; `forward` then throws E_DISPOSED. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /** Frees the caches. Idempotent; a disposed sequence cannot be used again. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    dispose(this.kv.flatMap((c) => (c ? [c.k, c.v] : [])));
    this.kv.length = 0;
  }
}

/** Disposes a sequence whose caches a failed forward left half-updated, recording why. */
export function failSequence(seq: Sequence, reason: string): void {
  failures.set(seq, reason);
  seq.dispose();
}

/** Throws E_DISPOSED (with the reason, if a forward failed) for a sequence that cannot be used. */
export function checkLive(seq: Sequence, where: string): void {
  if (!seq.disposed) return;
  const reason = failures.get(seq);
  throw new LoRAError(
    'E_DISPOSED',
    reason === undefined
      ? `${where}: the sequence was disposed; create a new Sequence for a new request`
      : `${where}: the sequence was discarded because an earlier forward failed part way (${reason.slice(0, 200)}); start the request again`,
  );
}
