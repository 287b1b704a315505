import { dispose, slice, type Tensor3D } from '@tensorflow/tfjs-core';
import type { LayerCache, Sequence } from '../sequence.js';

/**
 * What a prompt's keys and values were computed with. Positions before `from` ran on the base
 * model and positions from `from` on with the adapter named by `key` (an adapter, its strength, a
 * mix): so a base request and an activated LoRA (PEFT `alora_invocation_tokens`, vLLM PR 19710)
 * share the KV cache of the prompt before the invocation — what activated LoRA exists for. `key`
 * '' (or `from` = Infinity) is the base model throughout.
 */
export interface PrefixContext {
  readonly key: string;
  readonly from: number;
}

/** Counters since the cache was made (vLLM's `prefix_cache_queries` / `prefix_cache_hits`, in tokens). */
export interface PrefixCacheCounters {
  /** Prompt tokens looked up. */
  readonly queries: number;
  /** Of those, tokens whose keys and values came from the cache. */
  readonly hits: number;
  /** Tokens the cache holds now (its memory: layers × 2 × kvHeads × headDim floats each). */
  readonly tokens: number;
}

/** One stored prompt prefix: every layer's keys and values for its first `length` positions. */
interface Entry {
  readonly kv: LayerCache[];
  readonly length: number;
  /** (node, namespace) pairs that still point to it; at 0 a newer entry holds all of it. */
  holds: number;
  /** Where it is registered, so eviction can unregister it. */
  readonly at: { node: TrieNode; ns: string }[];
}

/** A block of tokens after its parent's; `holders` maps a namespace to the entry with that prefix. */
interface TrieNode {
  readonly parent: TrieNode | null;
  readonly key: string;
  readonly children: Map<string, TrieNode>;
  readonly holders: Map<string, Entry>;
}

const trieNode = (parent: TrieNode | null, key: string): TrieNode => ({ parent, key, children: new Map(), holders: new Map() });

/** A block's exact key (token ids are < 2^31): no hash, so no collision can hand out another prompt's cache. */
const blockKey = (ids: Int32Array, from: number, size: number): string => ids.subarray(from, from + size).join(',');

/**
 * Automatic prefix caching (vLLM `docs/design/automatic_prefix_caching.md`): a block of
 * `blockSize` tokens is identified by its tokens, every token before it and what they were computed
 * with; a new prompt reuses the longest run of cached blocks it starts with and prefills only the
 * rest. Here blocks are the nodes of a trie keyed by their exact token ids, and the keys and values
 * live in one copy per stored prompt (an entry) that a newer entry covering the same blocks
 * replaces; entries are evicted least recently used first past `maxTokens`.
 *
 * Exactness: a position's keys and values depend only on the tokens up to it and on the adapter at
 * each of them, and every kernel computes a row the same way whatever else is in its batch (the
 * conformance suite checks it), so a prompt resumed from cached blocks is computed exactly as a
 * prompt whose chunked prefill broke at that block — the same bits.
 */
export class PrefixCache {
  readonly maxTokens: number;
  readonly blockSize: number;
  readonly #root = trieNode(null, '');
  /** Insertion order is LRU order (oldest first). */
  readonly #entries = new Set<Entry>();
  #tokens = 0;
  #queries = 0;
  #hits = 0;

  constructor(maxTokens: number, blockSize: number) {
    this.maxTokens = maxTokens;
    this.blockSize = blockSize;
  }

  get counters(): PrefixCacheCounters {
    return { queries: this.#queries, hits: this.#hits, tokens: this.#tokens };
  }

  /**
   * Fills an empty `seq` with the longest cached prefix of `prompt` (whole blocks, leaving at least
   * the last prompt token to compute: its logits give the first generated token) and returns its
   * length, 0 on a miss. The sequence gets its own copies: the cache never shares tensors with it.
   */
  restore(prompt: Int32Array, ctx: PrefixContext, seq: Sequence): number {
    this.#queries += prompt.length;
    const [entry, length] = this.#find(prompt, ctx, prompt.length - 1);
    if (entry === undefined) return 0;
    this.#touch(entry);
    this.#hits += length;
    for (const c of entry.kv) seq.kv.push({ k: prefix(c.k, length), v: prefix(c.v, length) });
    seq.length = length;
    return length;
  }

  /**
   * Stores the whole blocks of a prompt whose prefill has just finished in `seq` (nothing when
   * they are cached already or cannot fit). Older entries it covers stop holding those blocks and
   * are freed once they hold none.
   */
  store(prompt: Int32Array, ctx: PrefixContext, seq: Sequence): void {
    const length = Math.floor(Math.min(prompt.length, seq.length) / this.blockSize) * this.blockSize;
    if (length === 0 || length > this.maxTokens) return;
    const [cached, found] = this.#find(prompt, ctx, length);
    if (cached !== undefined && found === length) {
      this.#touch(cached);
      return;
    }
    while (this.#tokens + length > this.maxTokens) this.#evict(this.#entries.values().next().value as Entry);
    const entry: Entry = { kv: seq.kv.map((c) => ({ k: prefix(c.k, length), v: prefix(c.v, length) })), length, holds: 0, at: [] };
    let node = this.#root;
    for (let b = 0; b < length; b += this.blockSize) {
      const key = blockKey(prompt, b, this.blockSize);
      let child = node.children.get(key);
      if (child === undefined) node.children.set(key, (child = trieNode(node, key)));
      node = child;
      const ns = namespace(ctx, b + this.blockSize);
      const previous = node.holders.get(ns);
      if (previous !== undefined && --previous.holds === 0) this.#free(previous);
      node.holders.set(ns, entry);
      entry.holds++;
      entry.at.push({ node, ns });
    }
    this.#entries.add(entry);
    this.#tokens += length;
  }

  /** Frees every entry (the engine's `resetPrefixCache` and `close`). */
  clear(): void {
    for (const e of [...this.#entries]) this.#evict(e);
  }

  /** The deepest entry holding a prefix of `prompt` of at most `limit` tokens, and that prefix's length. */
  #find(prompt: Int32Array, ctx: PrefixContext, limit: number): [Entry | undefined, number] {
    let node: TrieNode | undefined = this.#root;
    let best: Entry | undefined;
    let length = 0;
    for (let b = this.blockSize; b <= limit; b += this.blockSize) {
      node = node.children.get(blockKey(prompt, b - this.blockSize, this.blockSize));
      const holder = node?.holders.get(namespace(ctx, b));
      // An entry holding block d holds every block before it in the same context: stop at the first miss.
      if (node === undefined || holder === undefined) break;
      best = holder;
      length = b;
    }
    return [best, length];
  }

  #touch(entry: Entry): void {
    this.#entries.delete(entry);
    this.#entries.add(entry);
  }

  /** Unregisters an entry wherever it still holds a block, drops the trie nodes left empty, then frees it. */
  #evict(entry: Entry): void {
    for (let i = entry.at.length - 1; i >= 0; i--) {
      const { node, ns } = entry.at[i] as Entry['at'][number];
      if (node.holders.get(ns) === entry) node.holders.delete(ns);
      // Deepest first: a node with no holder and no child is no prefix of anything cached.
      if (node.holders.size === 0 && node.children.size === 0) node.parent?.children.delete(node.key);
    }
    this.#free(entry);
  }

  #free(entry: Entry): void {
    if (!this.#entries.delete(entry)) return;
    this.#tokens -= entry.length;
    dispose(entry.kv.flatMap((c) => [c.k, c.v]));
  }
}

/** A block ending at `end` was computed on the base model when every position in it came before the adapter's start. */
const namespace = (ctx: PrefixContext, end: number): string => (ctx.key === '' || end <= ctx.from ? '' : `${ctx.key}#${ctx.from}`);

/** The first `length` positions of a head-major `[kvHeads, L, headDim]` cache, as a new tensor. */
const prefix = (x: Tensor3D, length: number): Tensor3D => slice(x, [0, 0, 0], [x.shape[0], length, x.shape[2]]);
