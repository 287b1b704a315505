/** Element types the simulated kernels move between HBM and VMEM, and their sizes in HBM. */
export type DType = 'bf16' | 'f32' | 'i32';

export const DTYPE_BYTES: Readonly<Record<DType, number>> = { bf16: 2, f32: 4, i32: 4 };

/**
 * An array in simulated HBM: row-major data of its full (padded) shape. bf16 arrays hold values
 * already rounded to bf16. `extent` says how much of each dimension is real data: everything at or
 * beyond it is zero padding. Kernels may skip arithmetic on known zeros (the product is exactly
 * zero), while the cost model still charges the padded shapes, as the MXU computes them.
 */
export interface HbmArray {
  /** Row-major elements of the full padded shape, held as float32; empty for a shape-only (cost-only) array. */
  readonly data: Float32Array;
  /** Full padded shape in elements: what blocks tile and what the cost model charges. */
  readonly shape: readonly number[];
  /** Real size of each dimension (≤ `shape`); elements at or beyond it are zero padding. */
  readonly extent: readonly number[];
  /** Element type in HBM: 2 bytes per element for bf16, 4 for f32 and i32. */
  readonly dtype: DType;
}

export function hbmArray(shape: readonly number[], dtype: DType, extent: readonly number[] = shape, data?: Float32Array): HbmArray {
  const size = shape.reduce((a, b) => a * b, 1);
  if (data !== undefined && data.length !== size) throw new Error(`hbmArray: ${data.length} elements for shape [${shape}]`);
  return { data: data ?? new Float32Array(size), shape, extent: extent.map((e, i) => Math.min(e, shape[i] as number)), dtype };
}

export const bytesOf = (shape: readonly number[], dtype: DType): number => shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype];

/**
 * An array with a shape and no data, for cost-only runs (the ablation report on Llama shapes):
 * the interpreter accounts DMAs and MXU work from shapes alone and kernels skip the arithmetic.
 */
export function virtualArray(shape: readonly number[], dtype: DType, extent: readonly number[] = shape): HbmArray {
  return { data: new Float32Array(0), shape, extent: extent.map((e, i) => Math.min(e, shape[i] as number)), dtype };
}

export const isVirtual = (a: HbmArray): boolean => a.data.length === 0 && a.shape.every((n) => n > 0);
