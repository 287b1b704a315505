import { LoRAError } from './errors.js';

/**
 * Float64 reference kernels on typed arrays: the oracle every backend is tested against. Plain loops,
 * no blocking, no cleverness: each output is the sum its definition names, accumulated in float64.
 *
 * Every result carries, per output row, the root-sum-square of the products that make up the row
 * (`rowScale`); the accuracy promise (docs/contract.md) is `max |actual - ref| / rowScale` per row. A row the
 * call must not write has rowScale 0: it must match exactly.
 */

export type Floats = ArrayLike<number>;

/** What every reference kernel returns: the float64 output and, per row, the scale its accuracy is measured against (see {@link reference.maxRelativeRowError}). */
export interface ReferenceResult {
  /** Row-major `[rows, cols]`. */
  readonly out: Float64Array;
  /** Root-sum-square of the products (and added inputs) summed into each row; 0 = row not written. */
  readonly rowScale: Float64Array;
  /** Rows of `out`: S·T for a shrink (row s·T + t), T for the others. */
  readonly rows: number;
  /** Columns of `out`: R for a shrink, the width of y for the others. */
  readonly cols: number;
}

/** The inputs of {@link reference.referenceShrink}: flat row-major arrays and their sizes. */
export interface ReferenceShrinkArgs {
  /** `[T, H]` */
  x: Floats;
  /** T: tokens (rows of x); the lengths of x and tokenLoraIndices are checked against it (E_SHAPE). */
  numTokens: number;
  /** H: columns of x and the last axis of each A stack. */
  hidden: number;
  /** One `[L, R, H]` stack per slice. */
  loraA: readonly Floats[];
  /** R: the rank axis of the stacks and of the output. */
  rank: number;
  /** Slot per token, -1 for none. */
  tokenLoraIndices: ArrayLike<number>;
  /** Factor on every product; it counts in `rowScale`. */
  scale: number;
  /** Per-token strength multiplying the token's products (on top of `scale`); absent = 1 for every token. */
  tokenScales?: ArrayLike<number>;
}

/** The inputs of {@link reference.referenceExpand}: flat row-major arrays and their sizes. */
export interface ReferenceExpandArgs {
  /** `[T, width]` */
  y: Floats;
  /** T: tokens (rows of y); the lengths of y, x and tokenLoraIndices are checked against it (E_SHAPE). */
  numTokens: number;
  /** Columns of y; the slices must fit in it from `offsetStart` (E_SHAPE otherwise). */
  width: number;
  /** `[S, T, R]` shrink output. */
  x: Floats;
  /** One `[L, O_s, R]` stack per slice. */
  loraB: readonly Floats[];
  /** Width O_s of each slice; slice s writes the columns from `offsetStart + Σ_{j<s} O_j`. */
  outputSlices: readonly number[];
  /** R: the last axis of x and of each B stack. */
  rank: number;
  /** Slot per token, -1 for none (the token's row is copied from y). An entry outside `[-1, L)` throws E_INDEX. */
  tokenLoraIndices: ArrayLike<number>;
  /** First column slice 0 writes (default 0). */
  offsetStart?: number;
  /** Add to y (true, the default) or overwrite the written columns of tokens with an adapter (false). */
  addInputs?: boolean;
}

function expectLength(name: string, actual: number, expected: number): void {
  if (actual !== expected) throw new LoRAError('E_SHAPE', `reference: ${name} has ${actual} elements, expected ${expected}`);
}

function stackSlots(name: string, stack: Floats, perSlot: number): number {
  if (perSlot === 0 || stack.length % perSlot !== 0) {
    throw new LoRAError('E_SHAPE', `reference: ${name} has ${stack.length} elements, not a whole number of ${perSlot}-element slots`);
  }
  return stack.length / perSlot;
}

function slotOf(indices: ArrayLike<number>, t: number, slots: number, name: string): number {
  const slot = indices[t] as number;
  if (!(Number.isInteger(slot) && slot >= -1 && slot < slots)) {
    throw new LoRAError('E_INDEX', `reference: tokenLoraIndices[${t}] = ${slot} is outside [-1, ${slots}) for ${name}`);
  }
  return slot;
}

/** `out[s, t, r] = scale · Σ_h A_s[slot(t), r, h] · x[t, h]`; rows are (s, t). */
export function referenceShrink(args: ReferenceShrinkArgs): ReferenceResult {
  const { x, numTokens: T, hidden: H, loraA, rank: R, tokenLoraIndices, scale, tokenScales } = args;
  expectLength('x', x.length, T * H);
  expectLength('tokenLoraIndices', tokenLoraIndices.length, T);
  if (tokenScales !== undefined) expectLength('tokenScales', tokenScales.length, T);
  const S = loraA.length;
  const out = new Float64Array(S * T * R);
  const rowScale = new Float64Array(S * T);
  for (let s = 0; s < S; s++) {
    const a = loraA[s] as Floats;
    const slots = stackSlots(`loraA[${s}]`, a, R * H);
    for (let t = 0; t < T; t++) {
      const slot = slotOf(tokenLoraIndices, t, slots, `loraA[${s}]`);
      if (slot < 0) continue;
      const factor = scale * (tokenScales === undefined ? 1 : (tokenScales[t] as number));
      let squares = 0;
      for (let r = 0; r < R; r++) {
        let acc = 0;
        const base = (slot * R + r) * H;
        for (let h = 0; h < H; h++) {
          const p = factor * (a[base + h] as number) * (x[t * H + h] as number);
          acc += p;
          squares += p * p;
        }
        out[(s * T + t) * R + r] = acc;
      }
      rowScale[s * T + t] = Math.sqrt(squares);
    }
  }
  return { out, rowScale, rows: S * T, cols: R };
}

/** y with slice s of `B_s[slot(t)] · x[s, t]` added (or written) at its column offset; rows are tokens. */
export function referenceExpand(args: ReferenceExpandArgs): ReferenceResult {
  const { y, numTokens: T, width: W, x, loraB, outputSlices, rank: R, tokenLoraIndices } = args;
  const offsetStart = args.offsetStart ?? 0;
  const addInputs = args.addInputs ?? true;
  const S = loraB.length;
  expectLength('y', y.length, T * W);
  expectLength('x', x.length, S * T * R);
  expectLength('outputSlices', outputSlices.length, S);
  expectLength('tokenLoraIndices', tokenLoraIndices.length, T);
  const total = outputSlices.reduce((a, b) => a + b, 0);
  if (offsetStart + total > W) throw new LoRAError('E_SHAPE', `reference: slices need ${offsetStart + total} columns, y has ${W}`);
  const out = Float64Array.from(y);
  const squares = new Float64Array(T);
  let col0 = offsetStart;
  for (let s = 0; s < S; s++) {
    const O = outputSlices[s] as number;
    const b = loraB[s] as Floats;
    const slots = stackSlots(`loraB[${s}]`, b, O * R);
    for (let t = 0; t < T; t++) {
      const slot = slotOf(tokenLoraIndices, t, slots, `loraB[${s}]`);
      if (slot < 0) continue;
      for (let o = 0; o < O; o++) {
        const yi = t * W + col0 + o;
        let acc = 0;
        if (addInputs) {
          acc = y[yi] as number;
          squares[t] = (squares[t] as number) + acc * acc;
        }
        const base = (slot * O + o) * R;
        for (let r = 0; r < R; r++) {
          const p = (b[base + r] as number) * (x[(s * T + t) * R + r] as number);
          acc += p;
          squares[t] = (squares[t] as number) + p * p;
        }
        out[yi] = acc;
      }
    }
    col0 += O;
  }
  return { out, rowScale: squares.map(Math.sqrt), rows: T, cols: W };
}

/** The inputs of {@link reference.referenceLoRALinear}: a shrink's and an expand's, sharing tokens, rank and slots. */
export interface ReferenceLinearArgs extends Omit<ReferenceShrinkArgs, 'x'>, Omit<ReferenceExpandArgs, 'x' | 'offsetStart' | 'addInputs'> {
  /** `[T, H]` activations. */
  x: Floats;
}

/** `y + scale · B·(A·x)` with the shrink result kept in float64 between the two steps. */
export function referenceLoRALinear(args: ReferenceLinearArgs): ReferenceResult {
  const shrunk = referenceShrink(args);
  return referenceExpand({ ...args, x: shrunk.out, offsetStart: 0, addInputs: true });
}

/** The inputs of {@link reference.referenceEmbedding}: flat row-major arrays and their sizes. */
export interface ReferenceEmbeddingArgs {
  /** `[T, O]` */
  y: Floats;
  /** T: tokens (rows of y, entries of `tokenIds`). */
  numTokens: number;
  /** O: columns of y, the embedding width. */
  width: number;
  /** Token id per token; for tokens with an adapter it must be in `[0, vocab)` (E_INDEX otherwise). */
  tokenIds: ArrayLike<number>;
  /** `[L, V, R]` */
  loraA: Floats;
  /** V: the vocabulary size, the middle axis of A. */
  vocab: number;
  /** `[L, O, R]` */
  loraB: Floats;
  /** R: the last axis of both stacks. */
  rank: number;
  /** Slot per token, -1 for none (the token's row is copied from y). */
  tokenLoraIndices: ArrayLike<number>;
  /** Per-token strength multiplying the token's LoRA term; absent = 1 for every token. */
  tokenScales?: ArrayLike<number>;
}

/** `y + B[slot(t)] · A[slot(t), tokenIds[t]]`. */
export function referenceEmbedding(args: ReferenceEmbeddingArgs): ReferenceResult {
  const { numTokens: T, vocab: V, rank: R, loraA, tokenIds, tokenLoraIndices } = args;
  expectLength('tokenIds', tokenIds.length, T);
  const slots = stackSlots('loraA', loraA, V * R);
  const rows = new Float64Array(T * R);
  for (let t = 0; t < T; t++) {
    const slot = slotOf(tokenLoraIndices, t, slots, 'loraA');
    const id = tokenIds[t] as number;
    if (slot < 0) continue;
    if (!(Number.isInteger(id) && id >= 0 && id < V)) throw new LoRAError('E_INDEX', `reference: tokenIds[${t}] = ${id} outside [0, ${V})`);
    const factor = args.tokenScales === undefined ? 1 : (args.tokenScales[t] as number);
    for (let r = 0; r < R; r++) rows[t * R + r] = factor * (loraA[(slot * V + id) * R + r] as number);
  }
  return referenceExpand({ ...args, x: rows, loraB: [args.loraB], outputSlices: [args.width], offsetStart: 0, addInputs: true });
}

/** One adapter module of a layer slice for {@link reference.referenceLoRALayer}, in PEFT's layouts. */
export interface ReferenceLayerModule {
  /** lora_A `[rank, H]`. */
  a: Floats;
  /** lora_B `[O_s, rank]`, unscaled. */
  b: Floats;
  rank: number;
  /** `lora_alpha / r` (or the module's own). */
  scale: number;
  /** DoRA's `lora_magnitude_vector` `[O_s]`; absent for plain LoRA. */
  magnitude?: Floats;
}

/** The inputs of {@link reference.referenceLoRALayer}: a whole linear layer (base weight, bias, slices) and each slot's modules. */
export interface ReferenceLayerArgs {
  /** `[T, H]` */
  x: Floats;
  numTokens: number;
  hidden: number;
  /** Base weight `[O, H]` (torch layout). */
  weight: Floats;
  /** Base bias `[O]`, if any. */
  bias?: Floats;
  /** Width of each slice, in column order; they add up to O. */
  outputSlices: readonly number[];
  /** Per slot, one module (or null: not targeted) per slice. */
  slots: readonly (readonly (ReferenceLayerModule | null)[])[];
  /** Slot per token, -1 for none. */
  tokenLoraIndices: ArrayLike<number>;
  /** Per-token strength; absent = 1 for every token. */
  tokenScales?: ArrayLike<number>;
}

/**
 * A PEFT LoRA layer's output for every token, in float64, written from PEFT `lora/layer.py`
 * `Linear.forward` and `lora/dora.py` `DoraLinearLayer`: `W·x + bias + st·s·B·A·x` for a plain
 * module, and for a DoRA module with `f = m / ‖W + s·B·A‖` (norm of each output row over the inputs)
 * `(1 + st·(f − 1)) ⊙ (W·x + st·s·B·A·x) + bias` — at strength st = 1 PEFT's
 * `base(x) + (f − 1)·W·x + f·s·B·A·x`, at 0 the base layer (docs/contract.md "DoRA").
 */
export function referenceLoRALayer(args: ReferenceLayerArgs): ReferenceResult {
  const { x, numTokens: T, hidden: H, weight, bias, outputSlices, slots, tokenLoraIndices, tokenScales } = args;
  const O = outputSlices.reduce((a, b) => a + b, 0);
  expectLength('x', x.length, T * H);
  expectLength('weight', weight.length, O * H);
  if (bias !== undefined) expectLength('bias', bias.length, O);
  expectLength('tokenLoraIndices', tokenLoraIndices.length, T);
  // DoRA's factor per slot and output column (1 where the module is plain or absent).
  const factors = slots.map((modules) => {
    const f = new Float64Array(O).fill(1);
    let col0 = 0;
    outputSlices.forEach((width, s) => {
      const m = modules[s];
      if (m?.magnitude !== undefined) {
        for (let o = 0; o < width; o++) {
          let n2 = 0;
          for (let h = 0; h < H; h++) {
            let v = weight[(col0 + o) * H + h] as number;
            for (let k = 0; k < m.rank; k++) v += m.scale * (m.b[o * m.rank + k] as number) * (m.a[k * H + h] as number);
            n2 += v * v;
          }
          f[col0 + o] = (m.magnitude[o] as number) / Math.sqrt(n2);
        }
      }
      col0 += width;
    });
    return f;
  });
  const out = new Float64Array(T * O);
  const rowScale = new Float64Array(T);
  for (let t = 0; t < T; t++) {
    const slot = slotOf(tokenLoraIndices, t, slots.length, 'slots');
    const st = tokenScales === undefined ? 1 : (tokenScales[t] as number);
    let squares = 0;
    let col0 = 0;
    outputSlices.forEach((width, s) => {
      const m = slot < 0 ? null : ((slots[slot] as readonly (ReferenceLayerModule | null)[])[s] ?? null);
      const shrunk = new Float64Array(m?.rank ?? 0);
      if (m)
        for (let k = 0; k < m.rank; k++) for (let h = 0; h < H; h++) shrunk[k] += (m.a[k * H + h] as number) * (x[t * H + h] as number);
      for (let o = 0; o < width; o++) {
        const c = col0 + o;
        const f = slot < 0 ? 1 : ((factors[slot] as Float64Array)[c] as number);
        const fac = 1 + st * (f - 1);
        let acc = 0;
        for (let h = 0; h < H; h++) {
          const p = fac * (weight[c * H + h] as number) * (x[t * H + h] as number);
          acc += p;
          squares += p * p;
        }
        if (m) {
          for (let k = 0; k < m.rank; k++) {
            const p = fac * st * m.scale * (m.b[o * m.rank + k] as number) * (shrunk[k] as number);
            acc += p;
            squares += p * p;
          }
        }
        if (bias !== undefined) {
          acc += bias[c] as number;
          squares += (bias[c] as number) ** 2;
        }
        out[t * O + c] = acc;
      }
      col0 += width;
    });
    rowScale[t] = Math.sqrt(squares);
  }
  return { out, rowScale, rows: T, cols: O };
}

/** The inputs of {@link reference.referenceLoRAEmbeddingLayer}: a whole embedding layer and each slot's module. */
export interface ReferenceEmbeddingLayerArgs {
  /** The base table `[V, D]`. */
  table: Floats;
  vocab: number;
  width: number;
  /** Token id per token, in `[0, V)`. */
  tokenIds: ArrayLike<number>;
  /** Per slot, the module (PEFT layouts: a = lora_embedding_A `[rank, V]`, b = lora_embedding_B `[D, rank]`) or null. */
  slots: readonly (ReferenceLayerModule | null)[];
  /** Slot per token, -1 for none. */
  tokenLoraIndices: ArrayLike<number>;
  /** Per-token strength; absent = 1 for every token. */
  tokenScales?: ArrayLike<number>;
}

/**
 * A PEFT LoRA embedding's output for every token, in float64, written from PEFT `lora/layer.py`
 * `Embedding.forward` and `lora/dora.py` `DoraEmbeddingLayer`: `E[id] + st·s·B·A[:, id]` for a plain
 * module, and for a DoRA module with `f = m / ‖E + s·(B·A)ᵀ‖` per embedding dimension (the norm of
 * each column over the vocabulary) `(1 + st·(f − 1)) ⊙ (E[id] + st·s·B·A[:, id])`.
 */
export function referenceLoRAEmbeddingLayer(args: ReferenceEmbeddingLayerArgs): ReferenceResult {
  const { table, vocab: V, width: D, tokenIds, slots, tokenLoraIndices, tokenScales } = args;
  const T = tokenIds.length;
  expectLength('table', table.length, V * D);
  expectLength('tokenLoraIndices', tokenLoraIndices.length, T);
  const delta = (m: ReferenceLayerModule, v: number, d: number) => {
    let s = 0;
    for (let k = 0; k < m.rank; k++) s += (m.b[d * m.rank + k] as number) * (m.a[k * V + v] as number);
    return m.scale * s;
  };
  const factors = slots.map((m) => {
    const f = new Float64Array(D).fill(1);
    if (m?.magnitude === undefined) return f;
    for (let d = 0; d < D; d++) {
      let n2 = 0;
      for (let v = 0; v < V; v++) n2 += ((table[v * D + d] as number) + delta(m, v, d)) ** 2;
      f[d] = (m.magnitude[d] as number) / Math.sqrt(n2);
    }
    return f;
  });
  const out = new Float64Array(T * D);
  const rowScale = new Float64Array(T);
  for (let t = 0; t < T; t++) {
    const slot = slotOf(tokenLoraIndices, t, slots.length, 'slots');
    const id = tokenIds[t] as number;
    if (!(Number.isInteger(id) && id >= 0 && id < V)) throw new LoRAError('E_INDEX', `reference: tokenIds[${t}] = ${id} outside [0, ${V})`);
    const st = tokenScales === undefined ? 1 : (tokenScales[t] as number);
    const m = slot < 0 ? null : (slots[slot] ?? null);
    let squares = 0;
    for (let d = 0; d < D; d++) {
      const fac = m === null ? 1 : 1 + st * (((factors[slot] as Float64Array)[d] as number) - 1);
      const base = fac * (table[id * D + d] as number);
      const lora = m === null ? 0 : fac * st * delta(m, id, d);
      out[t * D + d] = base + lora;
      squares += base * base + lora * lora;
    }
    rowScale[t] = Math.sqrt(squares);
  }
  return { out, rowScale, rows: T, cols: D };
}

/**
 * The accuracy measure of docs/contract.md: max over rows of `max_c |actual - ref| / rowScale`. Rows with
 * rowScale 0 must match exactly (Infinity otherwise); NaN anywhere gives Infinity.
 */
export function maxRelativeRowError(actual: Floats, ref: ReferenceResult): number {
  expectLength('actual', actual.length, ref.rows * ref.cols);
  let worst = 0;
  for (let row = 0; row < ref.rows; row++) {
    const scale = ref.rowScale[row] as number;
    let rowErr = 0;
    for (let c = 0; c < ref.cols; c++) {
      const i = row * ref.cols + c;
      const d = Math.abs((actual[i] as number) - (ref.out[i] as number));
      if (!(d <= rowErr)) rowErr = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
    }
    const rel = rowErr === 0 ? 0 : scale > 0 ? rowErr / scale : Number.POSITIVE_INFINITY;
    if (rel > worst) worst = rel;
  }
  return worst;
}
