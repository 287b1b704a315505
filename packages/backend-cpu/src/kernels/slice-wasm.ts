import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import {
  getKernel,
  type KernelConfig,
  type KernelFunc,
  registerKernel,
  Slice,
  type SliceAttrs,
  type SliceInputs,
  slice_util,
  type TensorInfo,
  unregisterKernel,
} from '@tensorflow/tfjs-core';

/**
 * tfjs-wasm's Slice kernel (4.22) reads its whole input off the heap into a new JS array
 * (`readSync`) before it copies the slice: a slice of a few rows of a large tensor costs the whole
 * tensor, twice. Attention slices each KV head's rows out of a sequence's cache, so every decode step
 * copied every cache three times per head (docs/perf-notes.md, "KV caches"). This kernel does the
 * same slice on views of the heap: only the slice's values are copied. Strings keep tfjs' kernel.
 */

const heapSlices = new WeakSet<KernelConfig>();

type Values = Float32Array | Int32Array | Uint8Array;

/**
 * Copies the `size` block at `begin` of a row-major `shape` array into `out`: innermost axes taken
 * whole join the run above them, so a block of whole rows is one copy.
 */
export function copyBlock(x: Values, shape: readonly number[], begin: readonly number[], size: readonly number[], out: Values): void {
  const rank = shape.length;
  if (rank === 0) {
    out.set(x.subarray(0, 1));
    return;
  }
  const strides = new Array<number>(rank);
  strides[rank - 1] = 1;
  for (let j = rank - 2; j >= 0; j--) strides[j] = (strides[j + 1] as number) * (shape[j + 1] as number);
  // Axis k is the outermost of the run: every axis after it is whole (its size is its length, so it starts at 0).
  let k = rank - 1;
  let run = size[k] as number;
  while (k > 0 && size[k] === shape[k]) {
    k--;
    run *= size[k] as number;
  }
  // An odometer over the axes before k.
  const index = new Array<number>(k).fill(0);
  let written = 0;
  const total = out.length;
  while (written < total) {
    let from = (begin[k] as number) * (strides[k] as number);
    for (let j = 0; j < k; j++) from += ((begin[j] as number) + (index[j] as number)) * (strides[j] as number);
    out.set(x.subarray(from, from + run), written);
    written += run;
    for (let j = k - 1; j >= 0; j--) {
      index[j] = (index[j] as number) + 1;
      if ((index[j] as number) < (size[j] as number)) break;
      index[j] = 0;
    }
  }
}

/** The heap slice for tfjs "wasm", with tfjs' own kernel for what it does not handle (strings). */
function heapSliceKernel(original: KernelConfig): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const { x } = args.inputs as unknown as SliceInputs & { x: TensorInfo };
    if (x.dtype === 'string') return original.kernelFunc(args);
    const { begin, size } = args.attrs as unknown as SliceAttrs;
    const backend = args.backend as BackendWasm;
    const [b, s] = slice_util.parseSliceParams(x, begin, size);
    const out = backend.makeOutput(s, x.dtype);
    if (s.some((d) => d === 0)) return out;
    // Views made after makeOutput: growing the heap detaches earlier ones.
    copyBlock(backend.typedArrayFromHeap(x) as Values, x.shape, b, s, backend.typedArrayFromHeap(out) as Values);
    return out;
  };
  const config: KernelConfig = { kernelName: Slice, backendName: 'wasm', kernelFunc };
  heapSlices.add(config);
  return config;
}

/** Puts the heap slice in place of tfjs-wasm's Slice (once; tfjs-wasm must be loaded). */
export function installHeapSlice(): void {
  const current = getKernel(Slice, 'wasm');
  if (current === undefined || heapSlices.has(current)) return;
  unregisterKernel(Slice, 'wasm');
  registerKernel(heapSliceKernel(current));
}
