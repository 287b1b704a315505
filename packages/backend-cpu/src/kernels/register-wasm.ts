import { expandKernelArgs, LORA_EXPAND, LORA_SHRINK, scaleShrinkRows, shrinkKernelArgs } from '@lora/core/backend';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import { expandOnHeap, shrinkOnHeap } from '../simd/drive.js';
import { type SimdKernels, simdKernelsFor } from '../simd/module.js';
import { expandSegments } from './expand.js';
import { shrinkSegments } from './shrink.js';

interface WasmHeap {
  be: BackendWasm;
  simd: SimdKernels | null;
  ptr(t: TensorInfo): number;
  /** A view on the heap, made after every allocation of the call (memory growth detaches views). */
  view(ptr: number, length: number): Float32Array;
}

function heap(backend: unknown): WasmHeap {
  // `asm.memory` and `HEAPF32` are the emscripten module's (not in tfjs' typings): the heap itself.
  const be = backend as BackendWasm & { wasm: { asm: { memory: WebAssembly.Memory }; HEAPF32: Float32Array } };
  return {
    be,
    simd: simdKernelsFor(be.wasm.asm.memory),
    ptr: (t) => be.dataIdMap.get(t.dataId)?.memoryOffset as number,
    view: (ptr, length) => new Float32Array(be.wasm.HEAPF32.buffer, ptr, length),
  };
}

const size = (t: TensorInfo) => t.shape.reduce((a, b) => a * b, 1);

/**
 * tfjs kernels for the "wasm" backend (tfjs-backend-wasm): LoRAShrink and LoRAExpand. Tensors live
 * on the backend's heap, and so do the outputs (made by the backend). The SIMD module is
 * instantiated on that same heap, so nothing is copied; where SIMD is not available (no wasm SIMD,
 * or a shared heap in threaded tfjs builds) {@link shrinkSegments} and {@link expandSegments} run
 * on Float32Array views of the heap, still without copies.
 *
 * @returns The shrink and expand `KernelConfig`s for backend "wasm", for `KernelBackendSpec.kernels`.
 */
export function wasmKernels(): KernelConfig[] {
  const shrink: KernelConfig = {
    kernelName: LORA_SHRINK,
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const h = heap(backend);
      const { x, loraA, meta, scale, dims } = shrinkKernelArgs(inputs, attrs);
      const { slices, tokens, hidden, rank } = dims;
      const out = h.be.makeOutput([slices, tokens, rank], 'float32');
      if (h.simd) {
        shrinkOnHeap(h.simd, { out: h.ptr(out), x: h.ptr(x), loraA: loraA.map(h.ptr), hidden, rank, meta, scale });
      } else {
        const o = h.view(h.ptr(out), size(out));
        o.fill(0);
        shrinkSegments({
          out: o,
          x: h.view(h.ptr(x), size(x)),
          loraA: loraA.map((a) => h.view(h.ptr(a), size(a))),
          hidden,
          rank,
          meta,
          scale,
        });
      }
      // Views are made after the last allocation of the call (heap growth detaches them).
      scaleShrinkRows(h.view(h.ptr(out), size(out)), meta, rank);
      return out;
    },
  };
  const expand: KernelConfig = {
    kernelName: LORA_EXPAND,
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const h = heap(backend);
      const { y, x, loraB, meta, outputSlices, offsetStart, addInputs, dims } = expandKernelArgs(inputs, attrs);
      const { width, rank } = dims;
      const out = h.be.makeOutput(y.shape, 'float32');
      const common = { width, rank, outputSlices, offsetStart, addInputs, meta };
      if (h.simd) {
        expandOnHeap(h.simd, { ...common, y: h.ptr(y), out: h.ptr(out), x: h.ptr(x), loraB: loraB.map(h.ptr) });
      } else {
        const o = h.view(h.ptr(out), size(out));
        o.set(h.view(h.ptr(y), size(y)));
        expandSegments({ ...common, out: o, x: h.view(h.ptr(x), size(x)), loraB: loraB.map((b) => h.view(h.ptr(b), size(b))) });
      }
      return out;
    },
  };
  return [shrink, expand];
}
