import { KERNELS_WASM_BASE64 } from './kernels-wasm.js';

/**
 * The SIMD kernels; every pointer is a byte offset into the tfjs-backend-wasm heap. Shrink's R is
 * the rows it computes; expand's R is the B row stride and K the columns it reads (the slot's true rank).
 */
export interface SimdKernels {
  shrink4(
    o0: number,
    o1: number,
    o2: number,
    o3: number,
    x0: number,
    x1: number,
    x2: number,
    x3: number,
    a: number,
    H: number,
    R: number,
    scale: number,
  ): void;
  shrink1(o: number, x: number, a: number, H: number, R: number, scale: number): void;
  expand2(
    out0: number,
    out1: number,
    src0: number,
    src1: number,
    add: number,
    b: number,
    R: number,
    K: number,
    o0: number,
    o1: number,
    v0: number,
    v1: number,
  ): void;
  expand1(out0: number, src0: number, add: number, b: number, R: number, K: number, o0: number, o1: number, v0: number): void;
  copy(dst: number, src: number, bytes: number): void;
  fill0(dst: number, bytes: number): void;
}

let compiled: WebAssembly.Module | null | undefined;
const instances = new WeakMap<WebAssembly.Memory, SimdKernels>();

function decodeBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Whether this engine compiles wasm SIMD (the module is ~3 KB, so a synchronous compile is fine). */
export function simdSupported(): boolean {
  if (compiled === undefined) {
    try {
      compiled = new WebAssembly.Module(decodeBase64(KERNELS_WASM_BASE64) as BufferSource);
    } catch {
      compiled = null;
    }
  }
  return compiled !== null;
}

/**
 * The kernels instantiated on `memory` (tfjs-backend-wasm's own heap, imported, so tensors are
 * used in place). Null where SIMD is missing or the heap is shared (threaded tfjs builds), and the
 * caller runs the scalar kernels on views of the heap instead.
 */
export function simdKernelsFor(memory: WebAssembly.Memory): SimdKernels | null {
  if (typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer) return null;
  if (!simdSupported()) return null;
  let kernels = instances.get(memory);
  if (!kernels) {
    kernels = new WebAssembly.Instance(compiled as WebAssembly.Module, { env: { memory } }).exports as unknown as SimdKernels;
    instances.set(memory, kernels);
  }
  return kernels;
}
