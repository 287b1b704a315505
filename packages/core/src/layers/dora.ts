import {
  add,
  concat,
  dispose,
  div,
  gather,
  keep,
  matMul,
  mul,
  slice,
  sqrt,
  square,
  stack,
  sub,
  type Tensor1D,
  type Tensor2D,
  tensor1d,
  tensor2d,
  sum as tfSum,
  tidy,
  transpose,
  where,
  zeros,
} from '@tensorflow/tfjs-core';
import type { AdapterModuleWeights } from '../adapters/adapter.js';
import { describeValue, LoRAError } from '../errors.js';
import type { LoRAMapping } from '../metadata.js';

/**
 * DoRA for one linear layer (PEFT `lora/dora.py` `DoraLinearLayer`, docs/contract.md "DoRA").
 *
 * PEFT's layer output for a DoRA adapter is `base(x) + (f − 1)·W·x + f·s·B·A·x` with
 * `f = m / ‖W + s·B·A‖` per output row (m: `lora_magnitude_vector`, the norm over the input
 * features). With `y = base(x) + s·B·A·x`, which the punica call has already made, that is
 * `y + (f − 1) ⊙ (y − bias)`: one gathered row of `g = f − 1` per token, a multiply and an add. The
 * norms depend only on the adapter and W, so `g` is computed once on the device, when the adapter
 * enters a slot, and kept as one row per slot; a `[L + 1, O]` stack of them (made once per change,
 * its last row zeros for tokens without a DoRA adapter) is what a forward gathers from.
 *
 * A row's strength `st` (per-request `lora_scale`) scales both of DoRA's changes:
 * `(1 + st·(f − 1)) ⊙ (W·x + st·s·B·A·x) + bias`, so 1 is PEFT's output and 0 the base model's.
 */
export class DoRAColumns {
  /** `g = f − 1` per slot, `[O]` on the device; null for a slot without DoRA in this layer. */
  readonly #rows: (Tensor1D | null)[];
  #stack: Tensor2D | null = null;
  readonly #width: number;

  constructor(maxLoras: number, width: number) {
    this.#rows = Array.from({ length: maxLoras }, () => null);
    this.#width = width;
  }

  /**
   * A slot's `g` row from each slice's factors (a host array, a device tensor the call takes over,
   * or null: zeros, no change); all null clears the slot.
   */
  write(slot: number, slices: readonly (Float32Array | Tensor1D | null)[], widths: readonly number[]): void {
    this.#rows[slot]?.dispose();
    this.#rows[slot] = null;
    this.#stack?.dispose();
    this.#stack = null;
    if (slices.every((g) => g === null)) return;
    const row = tidy(() =>
      concat(slices.map((g, s) => (g === null ? zeros([widths[s] as number]) : g instanceof Float32Array ? tensor1d(g) : g))),
    );
    dispose(slices.filter((g): g is Tensor1D => g !== null && !(g instanceof Float32Array)));
    this.#rows[slot] = keep(row) as Tensor1D;
  }

  /**
   * `y + g[slot(t)] ⊙ (y − bias)` (times the row's strength) for the rows whose adapter is DoRA in
   * this layer; y itself, with no work, when no row of the batch is. Other rows are y bit for bit.
   */
  apply(y: Tensor2D, mapping: LoRAMapping, bias: Tensor1D | undefined): Tensor2D {
    const L = this.#rows.length;
    const rows = mapping.numTokens;
    const rowSlots = new Int32Array(rows).fill(L);
    const strengths = mapping.tokenScales === undefined ? undefined : new Float32Array(rows);
    let doraRows = 0;
    for (let t = 0; t < rows; t++) {
      const slot = mapping.tokenLoraIndices[t] as number;
      if (slot < 0 || this.#rows[slot] === null) continue;
      rowSlots[t] = slot;
      if (strengths !== undefined) strengths[t] = mapping.tokenScales?.[t] as number;
      doraRows++;
    }
    if (doraRows === 0) return y;
    this.#stack ??= keep(tidy(() => stack([...this.#rows.map((r) => r ?? zeros([this.#width])), zeros([this.#width])]))) as Tensor2D;
    const table = this.#stack;
    return tidy(() => {
      let g = gather(table, tensor1d(rowSlots, 'int32')) as Tensor2D;
      if (strengths !== undefined) g = mul(g, tensor2d(strengths, [rows, 1])) as Tensor2D;
      const out = add(y, mul(g, bias === undefined ? y : sub(y, bias))) as Tensor2D;
      // A row without DoRA gets g = 0: y + 0 is y except for -0 and non-finite values, which it must keep.
      if (doraRows === rows) return out;
      const mask = tensor2d(
        rowSlots.map((slot) => (slot < L ? 1 : 0)),
        [rows, 1],
        'bool',
      );
      return where(mask, out, y) as Tensor2D;
    });
  }

  dispose(): void {
    dispose(this.#rows.filter((r): r is Tensor1D => r !== null));
    this.#rows.fill(null);
    this.#stack?.dispose();
    this.#stack = null;
  }
}

/** The base weight as the layer multiplies by it: `[O, H]` ('out-in') or `[H, O]` ('in-out'). */
export interface DoRABase {
  readonly matrix: Tensor2D;
  readonly layout: 'out-in' | 'in-out';
}

/** Rows of W + s·B·A formed at a time: bounds the transient memory of a norm to 16 MB. */
const NORM_CHUNK_VALUES = 4 * 1024 * 1024;

/**
 * `g = m / ‖W_s + scale·B·A‖ − 1` for one slice (output rows `[offset, offset + O_s)` of W), on the
 * device, as PEFT's `DoraLinearLayer.get_weight_norm` forms it: `W + scale·B·A` row by row (in
 * chunks), each row's norm over the inputs. Summing the formed rows keeps the digits an expansion
 * `‖W‖² + 2s·B·(W·Aᵀ) + s²·‖B·A‖²` would lose where the adapter nearly cancels a row of W.
 */
export function doraFactors(base: DoRABase, offset: number, module: AdapterModuleWeights): Tensor1D {
  const { rank: r, inFeatures: H, outFeatures: O, scale } = module;
  const chunk = Math.max(1, Math.floor(NORM_CHUNK_VALUES / H));
  return tidy(() => {
    const A = tensor2d(module.a, [r, H]);
    const sB = mul(tensor2d(module.b, [O, r]), scale);
    const norms: Tensor1D[] = [];
    for (let start = 0; start < O; start += chunk) {
      const n = Math.min(chunk, O - start);
      const W =
        base.layout === 'out-in'
          ? slice(base.matrix, [offset + start, 0], [n, H])
          : transpose(slice(base.matrix, [0, offset + start], [H, n]));
      norms.push(sqrt(tfSum(square(add(W, matMul(slice(sB, [start, 0], [n, r]), A))), 1)) as Tensor1D);
    }
    return sub(div(tensor1d(module.magnitude as Float32Array), norms.length === 1 ? (norms[0] as Tensor1D) : concat(norms)), 1);
  });
}

/**
 * `g = m / ‖E + scale·(B·A)ᵀ‖ − 1` for an embedding (PEFT `DoraEmbeddingLayer`, whose
 * `get_weight_norm` runs with `fan_in_fan_out`): one factor per embedding dimension d, the norm of
 * column d of the `[V, D]` table with the adapter's delta, over the whole vocabulary. Formed in row
 * chunks of the table as {@link doraFactors} does, the squares summed chunk by chunk.
 */
export function doraEmbeddingFactors(table: Tensor2D, module: AdapterModuleWeights): Tensor1D {
  const { rank: r, inFeatures: V, outFeatures: D, scale } = module;
  const chunk = Math.max(1, Math.floor(NORM_CHUNK_VALUES / D));
  return tidy(() => {
    // PEFT: lora_embedding_A [r, V], lora_embedding_B [D, r]; the table's row v gets scale·(B·A[:, v])ᵀ.
    const A = tensor2d(module.a, [r, V]);
    const sBt = transpose(mul(tensor2d(module.b, [D, r]), scale));
    let squares: Tensor1D | null = null;
    for (let start = 0; start < V; start += chunk) {
      const n = Math.min(chunk, V - start);
      const rows = add(slice(table, [start, 0], [n, D]), matMul(slice(A, [0, start], [r, n]), sBt, true, false));
      const part = tfSum(square(rows), 0) as Tensor1D;
      squares = squares === null ? part : (add(squares, part) as Tensor1D);
    }
    return sub(div(tensor1d(module.magnitude as Float32Array), sqrt(squares as Tensor1D)), 1);
  });
}

/**
 * DoRA factors read back to the host and checked: a norm of zero (the adapter cancels a row of W,
 * or a column of an embedding table, exactly) makes `m / norm` meaningless, so the activation is
 * refused with E_FORMAT naming the module, before any slot is written. Backends that keep tensors
 * in host memory run it while validating; GPU backends would stall for the read-back and skip it
 * (docs/contract.md "DoRA"). Takes over `g`.
 */
function checkedFactors(g: Tensor1D, module: AdapterModuleWeights): Float32Array {
  let values: Float32Array;
  try {
    values = g.dataSync() as Float32Array;
  } finally {
    g.dispose();
  }
  for (let o = 0; o < values.length; o++) {
    if (!Number.isFinite(values[o])) {
      throw new LoRAError(
        'E_FORMAT',
        `${module.name}: DoRA needs the norm of W + scale·ΔW to be non-zero for every output feature; feature ${o} gives lora_magnitude_vector[${o}] / norm = ${describeValue(values[o])}`,
      );
    }
  }
  return values;
}

/**
 * A layer's DoRA state: the per-slot factor rows ({@link DoRAColumns}, made when the first DoRA
 * adapter arrives) and the factors already checked on the host per adapter module, so validating
 * and then writing a slot computes them once. `factorsOf(slice, module)` makes one slice's `g` on
 * the device (linear: {@link doraFactors}; embedding: {@link doraEmbeddingFactors}).
 */
export class DoRASlots {
  #columns: DoRAColumns | null = null;
  readonly #checked = new WeakMap<AdapterModuleWeights, Float32Array>();
  readonly #maxLoras: number;
  readonly #widths: readonly number[];
  readonly #factorsOf: (slice: number, module: AdapterModuleWeights) => Tensor1D;

  constructor(maxLoras: number, widths: readonly number[], factorsOf: (slice: number, module: AdapterModuleWeights) => Tensor1D) {
    this.#maxLoras = maxLoras;
    this.#widths = widths;
    this.#factorsOf = factorsOf;
  }

  /** Checks a DoRA module's factors on the host (host-memory backends, while validating a slot): E_FORMAT on a zero norm. */
  check(slice: number, module: AdapterModuleWeights): void {
    if (!this.#checked.has(module)) this.#checked.set(module, checkedFactors(this.#factorsOf(slice, module), module));
  }

  /** A slot's factors from each slice's DoRA module (null: not DoRA there); all null clears the slot. */
  write(slot: number, modules: readonly (AdapterModuleWeights | null)[]): void {
    if (this.#columns === null && modules.every((m) => m === null)) return;
    this.#columns ??= new DoRAColumns(
      this.#maxLoras,
      this.#widths.reduce((a, b) => a + b, 0),
    );
    const factors = modules.map((m, s) => (m === null ? null : (this.#checked.get(m) ?? this.#factorsOf(s, m))));
    this.#columns.write(slot, factors, this.#widths);
  }

  /** {@link DoRAColumns.apply}; y itself while no DoRA adapter has been in a slot. */
  apply(y: Tensor2D, mapping: LoRAMapping, bias: Tensor1D | undefined): Tensor2D {
    return this.#columns === null ? y : this.#columns.apply(y, mapping, bias);
  }

  dispose(): void {
    this.#columns?.dispose();
    this.#columns = null;
  }
}
