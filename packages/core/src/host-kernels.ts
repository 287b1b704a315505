import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import {
  type ExpandKernelCall,
  expandKernelArgs,
  LORA_EXPAND,
  LORA_SHRINK,
  linearKernelArgs,
  type ShrinkKernelCall,
  shrinkKernelArgs,
} from './kernels.js';
import type { LoRAMapping } from './metadata.js';

/** A shrink call on a host-memory tfjs backend: the typed kernel call with its tensors as their Float32Arrays. */
export interface HostShrinkCall extends Omit<ShrinkKernelCall, 'x' | 'loraA' | 'index'> {
  /** Activations `[T, H]`, row-major, read in place (never write to it). */
  readonly x: Float32Array;
  /** One A stack `[L, R, H]` per slice, read in place. */
  readonly loraA: readonly Float32Array[];
}

/** An expand call on a host-memory tfjs backend: the typed kernel call with its tensors as their Float32Arrays. */
export interface HostExpandCall extends Omit<ExpandKernelCall, 'y' | 'x' | 'loraB' | 'index'> {
  /** The base output `[T, width]`, read in place: the kernel returns a new array and leaves this one as it is. */
  readonly y: Float32Array;
  /** The shrink result `[S, T, R]`, read in place. */
  readonly x: Float32Array;
  /** One B stack `[L, O_s, R]` per slice, read in place. */
  readonly loraB: readonly Float32Array[];
}

/** What {@link hostMemoryKernels} registers: the host functions and the names they run under. */
export interface HostKernelSpec {
  /** The tfjs backend whose tensors live in host memory as Float32Arrays (tfjs "cpu"). */
  readonly backendName: string;
  /** Kernel name of the shrink (default {@link LORA_SHRINK}); one tfjs backend holds one kernel per name. */
  readonly shrinkName?: string;
  /** Kernel name of the expand (default {@link LORA_EXPAND}). */
  readonly expandName?: string;
  /**
   * Kernel name of a fused shrink + expand built from the two functions below (one tfjs dispatch and
   * no `[S, T, R]` tensor per layer call; the backend then has `linear`); none when absent.
   */
  readonly linearName?: string;
  /** Computes the `[S, T, R]` shrink result into a new array. */
  shrink(call: HostShrinkCall): Float32Array;
  /** Computes the `[T, width]` output (y plus the LoRA terms) into a new array. */
  expand(call: HostExpandCall): Float32Array;
}

/**
 * Multiplies row t of a `[S, T, R]` shrink result in place by the mapping's strength for t
 * (`LoRAMapping.tokenScales`): per-request strength for kernels that compute on host arrays, at the
 * cost of one pass over the small result. Nothing happens when every strength is 1.
 */
export function scaleShrinkRows(out: Float32Array, meta: LoRAMapping, rank: number): void {
  const scales = meta.tokenScales;
  if (scales === undefined) return;
  const T = meta.numTokens;
  for (let row = 0, at = 0; at < out.length; row++, at += rank) {
    const f = scales[row % T] as number;
    for (let r = at; r < at + rank; r++) out[r] = (out[r] as number) * f;
  }
}

/** The part of tfjs' MathBackendCPU these kernels use (structural: core does not depend on tfjs-backend-cpu). */
interface HostBackend {
  data: { get(dataId: object): { values?: unknown } };
  makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): TensorInfo;
}

/**
 * tfjs kernels for a backend whose tensors are Float32Arrays in host memory: inputs are read in
 * place (zero copy) and outputs handed to the tfjs backend, so the engine tracks them like any op's
 * output. Backends computing on the host (cpu's JS kernels, the TPU simulator) write only the
 * arithmetic.
 */
export function hostMemoryKernels(spec: HostKernelSpec): KernelConfig[] {
  const values = (backend: HostBackend, t: TensorInfo) => backend.data.get(t.dataId).values as Float32Array;
  /** The `[S, T, R]` shrink result with the rows' strengths applied: the shrink kernel's, and the first half of the fused one. */
  const shrinkOnHost = (host: HostBackend, c: Omit<ShrinkKernelCall, 'index'>): Float32Array => {
    // Object literals, not rest/spread: this runs per layer call, where a spread costs microseconds.
    const out = spec.shrink({
      x: values(host, c.x),
      loraA: c.loraA.map((a) => values(host, a)),
      meta: c.meta,
      scale: c.scale,
      slotRanks: c.slotRanks,
      dims: c.dims,
      batch: c.batch,
      target: c.target,
    });
    scaleShrinkRows(out, c.meta, c.dims.rank);
    return out;
  };
  const shrink: KernelConfig = {
    kernelName: spec.shrinkName ?? LORA_SHRINK,
    backendName: spec.backendName,
    kernelFunc: ({ inputs, attrs, backend }) => {
      const host = backend as unknown as HostBackend;
      const c = shrinkKernelArgs(inputs, attrs);
      const out = shrinkOnHost(host, c);
      const { dims } = c;
      return host.makeTensorInfo([dims.slices, dims.tokens, dims.rank], 'float32', out);
    },
  };
  const expand: KernelConfig = {
    kernelName: spec.expandName ?? LORA_EXPAND,
    backendName: spec.backendName,
    kernelFunc: ({ inputs, attrs, backend }) => {
      const host = backend as unknown as HostBackend;
      const c = expandKernelArgs(inputs, attrs);
      const out = spec.expand({
        y: values(host, c.y),
        x: values(host, c.x),
        loraB: c.loraB.map((b) => values(host, b)),
        meta: c.meta,
        outputSlices: c.outputSlices,
        offsetStart: c.offsetStart,
        addInputs: c.addInputs,
        slotRanks: c.slotRanks,
        bLayout: c.bLayout,
        dims: c.dims,
        batch: c.batch,
        target: c.target,
      });
      return host.makeTensorInfo(c.y.shape.slice(), 'float32', out);
    },
  };
  if (spec.linearName === undefined) return [shrink, expand];
  const linear: KernelConfig = {
    kernelName: spec.linearName,
    backendName: spec.backendName,
    kernelFunc: ({ inputs, attrs, backend }) => {
      const host = backend as unknown as HostBackend;
      const c = linearKernelArgs(inputs, attrs);
      const shrunk = shrinkOnHost(host, c);
      const { meta, slotRanks, bLayout, dims, batch, target } = c;
      const y = values(host, c.y);
      const loraB = c.loraB.map((b) => values(host, b));
      const out = spec.expand({
        y,
        x: shrunk,
        loraB,
        meta,
        outputSlices: c.outputSlices,
        offsetStart: 0,
        addInputs: true,
        slotRanks,
        bLayout,
        dims,
        batch,
        target,
      });
      return host.makeTensorInfo(c.y.shape.slice(), 'float32', out);
    },
  };
  return [shrink, expand, linear];
}
