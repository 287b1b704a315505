import {
  add,
  concat,
  matMul,
  mul,
  reshape,
  slice,
  softmax,
  sub,
  type Tensor2D,
  type Tensor3D,
  tensor3d,
  transpose,
} from '@tensorflow/tfjs-core';

/**
 * Rotate-half rotary embedding (transformers `apply_rotary_pos_emb`: `x·cos + rotate_half(x)·sin`,
 * `rotate_half(x) = cat(-x2, x1)`) on `[tokens, heads, head_dim]`, with cos/sin `[tokens, 1, head_dim/2]`.
 * It acts on q and k as the checkpoint stores them: HF Llama weights are already permuted for it.
 */
export function applyRotary(x: Tensor3D, cos: Tensor3D, sin: Tensor3D): Tensor3D {
  const [T, heads, hd] = x.shape;
  const half = hd / 2;
  const x1 = slice(x, [0, 0, 0], [T, heads, half]);
  const x2 = slice(x, [0, 0, half], [T, heads, half]);
  return concat([sub(mul(x1, cos), mul(x2, sin)), add(mul(x2, cos), mul(x1, sin))], 2) as Tensor3D;
}

/** transformers' additive mask value for a masked position (its `finfo.min` also gives exp(·) = 0). */
const MASKED = -1e9;

/** Which keys a sequence's n new queries read, and the additive mask over them (null: none masked). */
export interface AttentionSpan {
  /** First key position read (keys before it are outside every query's window). */
  readonly start: number;
  /** `[n, 1, keys]`, broadcast over heads. */
  readonly mask: Tensor3D | null;
}

/**
 * The span for n queries at positions p0… over a cache that ends with them. A key is visible when
 * causal (`kv ≤ q`, transformers `masking_utils.causal_mask_function`) and, with a window, inside
 * it (`kv > q − window`, `sliding_window_overlay`). A single decode query sees every key it is
 * given, so it needs no mask. The same for every layer with the same window: compute it once per
 * step (`spans`).
 */
function attentionSpan(n: number, p0: number, window: number | null): AttentionSpan {
  const start = window === null ? 0 : Math.max(0, p0 - window + 1);
  const keys = p0 + n - start;
  const mask = new Float32Array(n * keys);
  let masked = false;
  for (let i = 0; i < n; i++) {
    const q = p0 + i;
    for (let j = 0; j < keys; j++) {
      const kv = start + j;
      if (kv > q || (window !== null && kv <= q - window)) {
        mask[i * keys + j] = MASKED;
        masked = true;
      }
    }
  }
  return { start, mask: masked ? tensor3d(mask, [n, 1, keys]) : null };
}

/** Spans memoised per (sequence row, window) for one step: every layer shares them. Call inside the step's tidy. */
export function spans(): (row: number, n: number, p0: number, window: number | null) => AttentionSpan {
  const memo = new Map<string, AttentionSpan>();
  return (row, n, p0, window) => {
    const key = `${row}:${window}`;
    let span = memo.get(key);
    if (span === undefined) memo.set(key, (span = attentionSpan(n, p0, window)));
    return span;
  };
}

/**
 * Causal grouped-query attention of n new queries over a sequence's whole cache
 * `[kvHeads, L, head_dim]` (the new keys included), reading keys from `span.start` on.
 * transformers `repeat_kv` gives query head h the KV head `h // (heads / kvHeads)`; here the query
 * heads that share a KV head are stacked as rows of one matmul per KV head instead, so the cache is
 * read once, not copied per query head. Scores are scaled by 1/√head_dim (`self.scaling`) and
 * softmaxed in float32.
 */
export function attend(q: Tensor3D, K: Tensor3D, V: Tensor3D, span: AttentionSpan): Tensor2D {
  const [n, heads, hd] = q.shape;
  const [kvHeads, L] = K.shape;
  const group = heads / kvHeads;
  const { start, mask } = span;
  const keys = L - start;
  const Ks = start > 0 ? slice(K, [0, start, 0], [kvHeads, keys, hd]) : K;
  const Vs = start > 0 ? slice(V, [0, start, 0], [kvHeads, keys, hd]) : V;
  // [n, heads, hd] → [kvHeads, n·group, hd]; row i·group + g is query i of head kvh·group + g.
  const qg = reshape(transpose(reshape(q, [n, kvHeads, group, hd]), [1, 0, 2, 3]), [kvHeads, n * group, hd]);
  let scores = mul(matMul(qg, Ks, false, true), 1 / Math.sqrt(hd));
  if (mask !== null) {
    // One mask row per query, broadcast over the KV heads and the query heads of a group.
    scores = reshape(add(reshape(scores, [kvHeads, n, group, keys]), mask), [kvHeads, n * group, keys]);
  }
  const out = matMul(softmax(scores), Vs); // [kvHeads, n·group, hd]
  return reshape(transpose(reshape(out, [kvHeads, n, group, hd]), [1, 0, 2, 3]), [n, heads * hd]) as Tensor2D;
}
