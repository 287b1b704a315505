import {
  add,
  concat,
  matMul,
  mul,
  reshape,
  slice,
  softmax,
  stack,
  sub,
  type Tensor,
  type Tensor2D,
  type Tensor3D,
  tensor3d,
  tidy,
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
 * How attention's two matmuls are issued. `batched`: one batched matmul over the KV heads, Kᵀ taken
 * by the matmul itself (`transposeB`). `per-head`: a plain 2-D matmul per KV head on an explicitly
 * transposed K — batch 1 and no transposed operand, the only shape tfjs-wasm hands to XNNPACK (the
 * backends that say `weightLayout: 'in-out'` have that path); the batched form runs there on a
 * scalar loop, which made a 2048-token prefill spend two thirds of its time in attention. Either
 * way each query row's scores, mask, softmax and weighted sum are computed in the same order
 * whatever else is in the step, so a sequence's logits stay bit-identical alone and in a batch.
 */
export type AttentionMatmul = 'batched' | 'per-head';

/**
 * Causal grouped-query attention of n new queries over a sequence's cache `[kvHeads, capacity,
 * head_dim]` whose first `length` positions are in use (the new keys included; default: all of
 * them), reading keys from `span.start` on.
 * transformers `repeat_kv` gives query head h the KV head `h // (heads / kvHeads)`; here the query
 * heads that share a KV head are stacked as rows of one matmul per KV head instead, so the cache is
 * read once, not copied per query head. Scores are scaled by 1/√head_dim (`self.scaling`) and
 * softmaxed in float32.
 */
export function attend(
  q: Tensor3D,
  K: Tensor3D,
  V: Tensor3D,
  span: AttentionSpan,
  matmul: AttentionMatmul = 'batched',
  length: number = K.shape[1],
): Tensor2D {
  const [n, heads, hd] = q.shape;
  const kvHeads = K.shape[0];
  const group = heads / kvHeads;
  const { start, mask } = span;
  const keys = length - start;
  const whole = start === 0 && length === K.shape[1];
  const keysOf = (x: Tensor3D) => (whole ? x : (slice(x, [0, start, 0], [kvHeads, keys, hd]) as Tensor3D));
  // [n, heads, hd] → [kvHeads, n·group, hd]; row i·group + g is query i of head kvh·group + g.
  const qg = reshape(transpose(reshape(q, [n, kvHeads, group, hd]), [1, 0, 2, 3]), [kvHeads, n * group, hd]) as Tensor3D;
  const scale = 1 / Math.sqrt(hd);
  // One mask row per query, broadcast over the query heads of a group (and the KV heads).
  const masked = (scores: Tensor) => (mask === null ? scores : reshape(add(reshape(scores, [-1, n, group, keys]), mask), scores.shape));
  let out: Tensor3D; // [kvHeads, n·group, hd]
  if (matmul === 'batched') {
    out = matMul(softmax(masked(mul(matMul(qg, keysOf(K), false, true), scale))), keysOf(V)) as Tensor3D;
  } else {
    // Rows [from, from + rows) of head h, straight from the cache (one copy, not a slice of a slice).
    const head = (x: Tensor3D, h: number, from: number, rows: number) =>
      reshape(slice(x, [h, from, 0], [1, rows, hd]), [rows, hd]) as Tensor2D;
    const perHead: Tensor2D[] = [];
    for (let h = 0; h < kvHeads; h++) {
      // A scope per head: one head's scores and packed copies are live at a time.
      perHead.push(
        tidy(() => {
          const scores = mul(matMul(head(qg, h, 0, n * group), transpose(head(K, h, start, keys))), scale) as Tensor2D;
          return matMul(softmax(masked(scores)) as Tensor2D, head(V, h, start, keys));
        }),
      );
    }
    out = stack(perHead) as Tensor3D;
  }
  return reshape(transpose(reshape(out, [kvHeads, n, group, hd]), [1, 0, 2, 3]), [n, heads * hd]) as Tensor2D;
}
