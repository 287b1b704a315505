import {
  type BLayout,
  expandKernelArgs,
  LORA_EXPAND,
  LORA_LINEAR,
  LORA_SHRINK,
  type LoRAMapping,
  linearKernelArgs,
  scaleShrinkRows,
  shrinkKernelArgs,
} from '@lora/core/backend';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import { expandOnHeap, shrinkOnHeap } from '../simd/drive.js';
import { type SimdKernels, simdKernelsFor } from '../simd/module.js';
import { expandSegments } from './expand.js';
import { shrinkSegments } from './shrink.js';

/** tfjs' wasm backend with the emscripten module's parts it does not type: the heap itself and its allocator. */
type HeapBackend = BackendWasm & {
  wasm: { asm: { memory: WebAssembly.Memory }; HEAPF32: Float32Array; _malloc(bytes: number): number; _free(ptr: number): void };
};

interface WasmHeap {
  be: HeapBackend;
  simd: SimdKernels | null;
  ptr(t: TensorInfo): number;
  /** A view on the heap, made after every allocation of the call (memory growth detaches views). */
  view(ptr: number, length: number): Float32Array;
  /** The fused kernel's `[S, T, R]` intermediate: one heap block kept across calls, grown as needed. */
  scratch: { ptr: number; bytes: number };
}

const heaps = new WeakMap<object, WasmHeap>();

/** The backend's heap accessors, made once per backend (every kernel call asks for them). */
function heap(backend: unknown): WasmHeap {
  let h = heaps.get(backend as object);
  if (h !== undefined) return h;
  const be = backend as HeapBackend;
  h = {
    be,
    simd: simdKernelsFor(be.wasm.asm.memory),
    ptr: (t) => be.dataIdMap.get(t.dataId)?.memoryOffset as number,
    // HEAPF32 is read at each call: memory growth replaces it.
    view: (ptr, length) => new Float32Array(be.wasm.HEAPF32.buffer, ptr, length),
    scratch: { ptr: 0, bytes: 0 },
  };
  heaps.set(backend as object, h);
  return h;
}

const size = (t: TensorInfo) => t.shape.reduce((a, b) => a * b, 1);

/**
 * `bytes` of heap for the fused kernel's intermediate, valid until the next call. A tensor per call
 * (makeOutput, disposeData) cost a malloc and a free, an entry in tfjs' data map and one in the
 * wasm module's tensor registry, each a cold cache line or more on a path that runs per layer call.
 * The block only grows: its largest size is `3 · maxNumTokens · maxLoraRank` floats or so.
 */
function scratch(h: WasmHeap, bytes: number): number {
  const s = h.scratch;
  if (s.bytes < bytes) {
    if (s.bytes > 0) h.be.wasm._free(s.ptr);
    s.bytes = 0;
    // `>>> 0` as tfjs does: malloc returns a signed pointer above 2 GB.
    s.ptr = h.be.wasm._malloc(bytes) >>> 0;
    s.bytes = bytes;
  }
  return s.ptr;
}

/**
 * tfjs kernels for the "wasm" backend (tfjs-backend-wasm): LoRAShrink, LoRAExpand and the two fused
 * (LoRAShrinkExpand, one dispatch per layer call). Tensors live
 * on the backend's heap, and so do the outputs (made by the backend). The SIMD module is
 * instantiated on that same heap, so nothing is copied; where SIMD is not available (no wasm SIMD,
 * or a shared heap in threaded tfjs builds) {@link shrinkSegments} and {@link expandSegments} run
 * on Float32Array views of the heap, still without copies.
 *
 * @returns The shrink, expand and fused `KernelConfig`s for backend "wasm", for `KernelBackendSpec.kernels`.
 */
export function wasmKernels(): KernelConfig[] {
  const shrink: KernelConfig = {
    kernelName: LORA_SHRINK,
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const h = heap(backend);
      const { x, loraA, meta, scale, slotRanks, dims } = shrinkKernelArgs(inputs, attrs);
      const out = h.be.makeOutput([dims.slices, dims.tokens, dims.rank], 'float32');
      shrinkInto(h, { out: h.ptr(out), outLength: size(out), x, loraA, meta, scale, slotRanks, hidden: dims.hidden, rank: dims.rank });
      return out;
    },
  };
  const expand: KernelConfig = {
    kernelName: LORA_EXPAND,
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const h = heap(backend);
      const { y, x, loraB, meta, outputSlices, offsetStart, addInputs, slotRanks, bLayout, dims } = expandKernelArgs(inputs, attrs);
      const out = h.be.makeOutput(y.shape, 'float32');
      expandInto(h, {
        out: h.ptr(out),
        y,
        x: h.ptr(x),
        xLength: size(x),
        loraB,
        meta,
        outputSlices,
        offsetStart,
        addInputs,
        slotRanks,
        bLayout,
        width: dims.width,
        rank: dims.rank,
      });
      return out;
    },
  };
  // Shrink and expand in one dispatch: the [S, T, R] result lives in the heap's scratch block.
  const linear: KernelConfig = {
    kernelName: LORA_LINEAR,
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const h = heap(backend);
      const { y, x, loraA, loraB, meta, scale, outputSlices, slotRanks, bLayout, dims } = linearKernelArgs(inputs, attrs);
      const { hidden, rank, width } = dims;
      const shrunkLength = dims.slices * dims.tokens * rank;
      const shrunk = scratch(h, shrunkLength * 4);
      // Made after the scratch block: either allocation may grow the heap, which moves no pointer.
      const out = h.be.makeOutput(y.shape, 'float32');
      shrinkInto(h, { out: shrunk, outLength: shrunkLength, x, loraA, meta, scale, slotRanks, hidden, rank });
      expandInto(h, {
        out: h.ptr(out),
        y,
        x: shrunk,
        xLength: shrunkLength,
        loraB,
        meta,
        outputSlices,
        offsetStart: 0,
        addInputs: true,
        slotRanks,
        bLayout,
        width,
        rank,
      });
      return out;
    },
  };
  return [shrink, expand, linear];
}

/** A shrink on heap tensors into `out` `[S, T, R]`: a heap pointer (a tensor's or the scratch block) and its length in floats. */
interface HeapShrink {
  out: number;
  outLength: number;
  x: TensorInfo;
  loraA: readonly TensorInfo[];
  meta: LoRAMapping;
  scale: number;
  slotRanks: Int32Array | undefined;
  hidden: number;
  rank: number;
}

/** The `[S, T, R]` shrink result into `out`, the rows' strengths applied. */
function shrinkInto(h: WasmHeap, a: HeapShrink): void {
  const { hidden, rank, meta, scale, slotRanks } = a;
  if (h.simd) {
    const stacks: number[] = [];
    for (const t of a.loraA) stacks.push(h.ptr(t));
    shrinkOnHeap(h.simd, { out: a.out, x: h.ptr(a.x), loraA: stacks, hidden, rank, meta, scale, slotRanks });
  } else {
    const out = h.view(a.out, a.outLength);
    out.fill(0);
    const x = h.view(h.ptr(a.x), size(a.x));
    shrinkSegments({ out, x, loraA: a.loraA.map((t) => h.view(h.ptr(t), size(t))), hidden, rank, meta, scale, slotRanks });
  }
  // Views are made after the last allocation of the call (heap growth detaches them).
  if (meta.tokenScales !== undefined) scaleShrinkRows(h.view(a.out, a.outLength), meta, rank);
}

/** An expand on heap tensors: `out` `[T, width]` (a heap pointer) is made by the caller; `x` `[S, T, R]` is a pointer and its length in floats. */
interface HeapExpand {
  out: number;
  y: TensorInfo;
  x: number;
  xLength: number;
  loraB: readonly TensorInfo[];
  meta: LoRAMapping;
  outputSlices: readonly number[];
  offsetStart: number;
  addInputs: boolean;
  slotRanks: Int32Array | undefined;
  bLayout: BLayout;
  width: number;
  rank: number;
}

/** `out` = y with the slices' LoRA terms added (or written). */
function expandInto(h: WasmHeap, a: HeapExpand): void {
  const { width, rank, outputSlices, offsetStart, addInputs, meta, slotRanks, bLayout } = a;
  if (h.simd) {
    const stacks: number[] = [];
    for (const b of a.loraB) stacks.push(h.ptr(b));
    // An object literal, not a spread: this runs per layer call (a spread costs microseconds here).
    const args = {
      y: h.ptr(a.y),
      out: a.out,
      x: a.x,
      loraB: stacks,
      width,
      rank,
      outputSlices,
      offsetStart,
      addInputs,
      meta,
      slotRanks,
      bLayout,
    };
    expandOnHeap(h.simd, args);
  } else {
    const out = h.view(a.out, size(a.y));
    out.set(h.view(h.ptr(a.y), size(a.y)));
    const x = h.view(a.x, a.xLength);
    const loraB = a.loraB.map((b) => h.view(h.ptr(b), size(b)));
    expandSegments({ out, x, loraB, width, rank, outputSlices, offsetStart, addInputs, meta, slotRanks, bLayout });
  }
}
