import {
  engine,
  findBackend,
  getBackend,
  getKernel,
  type KernelConfig,
  type NamedAttrMap,
  type NamedTensorInfoMap,
  type NamedTensorMap,
  registerKernel,
  setBackend,
  type Tensor,
  type Tensor2D,
  type Tensor3D,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import type { LoRABackend, LoRABackendStats } from './backend.js';
import type { BLayout, ExpandCall, ExpandDims, LinearCall, LinearDims, ShrinkCall, ShrinkDims } from './calls.js';
import { LoRAError } from './errors.js';
import type { LoRAMapping } from './metadata.js';

/**
 * Every backend registers its shrink and expand under these tfjs kernel names for its own tfjs
 * backend, so the calls run through the engine (tidy, memory accounting and profiling work as for
 * any tfjs op) and core can drive any backend the same way.
 */
export const LORA_SHRINK = 'LoRAShrink';
/** The tfjs kernel name expand runs under unless `KernelTarget.expand` names another; see {@link LORA_SHRINK}. */
export const LORA_EXPAND = 'LoRAExpand';
/** The tfjs kernel name of the optional fused shrink + expand (`LoRABackend.linear`) unless `KernelTarget.linear` names another. */
export const LORA_LINEAR = 'LoRAShrinkExpand';

/** Plain values a backend computes once per batch beside its upload (a path, offsets into it). */
export type BatchAttrs = Readonly<Record<string, number | string | boolean>>;

/**
 * What a backend adds to every call of one batch (`KernelBackendSpec.batch`): an uploaded index
 * (GPU backends: the token→slot mapping, made once per batch) and plain attributes that say how to
 * read it. The kernels receive them as `call.index` and `call.batch`.
 */
export interface KernelBatch {
  /** An int32 tensor uploaded for this batch (e.g. by {@link MappingUploads}), passed to the kernels as input `index`; absent when they need none. */
  readonly index?: Tensor;
  /** How the kernels read `index` or which path they take (offsets, a path name); `{}` when absent. */
  readonly attrs?: BatchAttrs;
}

/** The attributes every shrink kernel receives: plain values, the mapping, the sizes. */
export interface LoRAShrinkAttrs {
  /** The batch's token→slot mapping (`ShrinkCall.meta`). */
  readonly meta: LoRAMapping;
  /** Factor on every product (`ShrinkCall.scale`). */
  readonly scale: number;
  /** Each slot's true rank, undefined for the stacks' full rank (`ShrinkCall.slotRanks`). */
  readonly slotRanks: Int32Array | undefined;
  /** Sizes of the call (`ShrinkCall.dims`): a kernel reads these instead of tensor shapes. */
  readonly dims: ShrinkDims;
  /** `KernelBatch.attrs` of this batch, `{}` when the backend gave none. */
  readonly batch: BatchAttrs;
  /** `KernelTarget.attrs` of the calling backend instance. */
  readonly target: Readonly<Record<string, unknown>>;
}

/** The attributes every expand kernel receives: the {@link ExpandCall}'s plain values, the batch's and the backend instance's attributes. */
export interface LoRAExpandAttrs {
  /** The batch's token→slot mapping (`ExpandCall.meta`). */
  readonly meta: LoRAMapping;
  /** Width of each slice, in column order (`ExpandCall.outputSlices`). */
  readonly outputSlices: readonly number[];
  /** First column of y that slice 0 writes (`ExpandCall.offsetStart`). */
  readonly offsetStart: number;
  /** Add to y (true) or overwrite the covered columns (false) (`ExpandCall.addInputs`). */
  readonly addInputs: boolean;
  /** Each slot's true rank, undefined for the stacks' full rank (`ExpandCall.slotRanks`). */
  readonly slotRanks: Int32Array | undefined;
  /** How B's slots hold their rows (`ExpandCall.bLayout`): always 'padded' unless the backend declares `readsSlotRankB`. */
  readonly bLayout: BLayout;
  /** Sizes of the call (`ExpandCall.dims`): a kernel reads these instead of tensor shapes. */
  readonly dims: ExpandDims;
  /** `KernelBatch.attrs` of this batch, `{}` when the backend gave none. */
  readonly batch: BatchAttrs;
  /** `KernelTarget.attrs` of the calling backend instance. */
  readonly target: Readonly<Record<string, unknown>>;
}

/** The attributes every fused shrink + expand kernel receives (see {@link LinearCall}). */
export interface LoRALinearAttrs {
  /** The batch's token→slot mapping (`LinearCall.meta`). */
  readonly meta: LoRAMapping;
  /** Factor on every product (`LinearCall.scale`). */
  readonly scale: number;
  /** Width of each slice, in column order (`LinearCall.outputSlices`). */
  readonly outputSlices: readonly number[];
  /** Each slot's true rank, undefined for the stacks' full rank (`LinearCall.slotRanks`). */
  readonly slotRanks: Int32Array | undefined;
  /** How B's slots hold their rows (`LinearCall.bLayout`): always 'padded' unless the backend declares `readsSlotRankB`. */
  readonly bLayout: BLayout;
  /** Sizes of the call (`LinearCall.dims`). */
  readonly dims: LinearDims;
  /** `KernelBatch.attrs` of this batch, `{}` when the backend gave none. */
  readonly batch: BatchAttrs;
  /** `KernelTarget.attrs` of the calling backend instance. */
  readonly target: Readonly<Record<string, unknown>>;
}

/** A fused shrink + expand call as its kernel sees it: tensor infos by role, the batch's index (if any), typed attrs. */
export interface LinearKernelCall extends LoRALinearAttrs {
  /** The base output `[T, width]`, which the kernel must not modify. */
  readonly y: TensorInfo;
  /** Activations `[T, H]`. */
  readonly x: TensorInfo;
  /** One A stack `[L, R, H]` per slice (inputs `a0`, `a1`, …). */
  readonly loraA: readonly TensorInfo[];
  /** One B stack `[L, O_s, R]` per slice (inputs `b0`, `b1`, …). */
  readonly loraB: readonly TensorInfo[];
  /** The batch's uploaded index (`KernelBatch.index`), undefined when the backend uploads none. */
  readonly index: TensorInfo | undefined;
}

/** A shrink call as its kernel sees it: tensor infos by role, the batch's index (if any), typed attrs. */
export interface ShrinkKernelCall extends LoRAShrinkAttrs {
  /** Activations `[T, H]`. */
  readonly x: TensorInfo;
  /** One A stack `[L, R, H]` per slice (inputs `a0`, `a1`, …). */
  readonly loraA: readonly TensorInfo[];
  /** The batch's uploaded index (`KernelBatch.index`), undefined when the backend uploads none. */
  readonly index: TensorInfo | undefined;
}

/** An expand call as its kernel sees it: tensor infos by role, the batch's index (if any), typed attrs. */
export interface ExpandKernelCall extends LoRAExpandAttrs {
  /** The base output `[T, width]`, which the kernel must not modify. */
  readonly y: TensorInfo;
  /** The shrink result `[S, T, R]`. */
  readonly x: TensorInfo;
  /** One B stack `[L, O_s, R]` per slice (inputs `b0`, `b1`, …). */
  readonly loraB: readonly TensorInfo[];
  /** The batch's uploaded index (`KernelBatch.index`), undefined when the backend uploads none. */
  readonly index: TensorInfo | undefined;
}

// Plain loops and object literals on this path: it runs twice per layer and token step, where a
// spread or an Array.from costs about a microsecond each (measured: docs/perf-notes.md).

/**
 * The input names of slice lists: `a0`, `a1`, … and `b0`, `b1`, … Made once: a name built per call
 * (`'a' + s`) is a new string that every property access must first look up in V8's string table,
 * a few cold cache lines per slice on a path that runs per layer call.
 */
const INPUT_NAMES: Readonly<Record<'a' | 'b', readonly string[]>> = {
  a: Array.from({ length: 64 }, (_, s) => `a${s}`),
  b: Array.from({ length: 64 }, (_, s) => `b${s}`),
};

/** Variable-length slice lists travel as inputs named `${prefix}0`, `${prefix}1`, ... */
function packInputs(named: NamedTensorMap, prefix: 'a' | 'b', tensors: readonly Tensor[], index: Tensor | undefined): NamedTensorMap {
  const names = INPUT_NAMES[prefix];
  for (let s = 0; s < tensors.length; s++) named[names[s] ?? prefix + s] = tensors[s] as Tensor;
  if (index !== undefined) named.index = index;
  return named;
}

function unpackSlices(inputs: NamedTensorInfoMap, prefix: 'a' | 'b', numSlices: number): TensorInfo[] {
  const names = INPUT_NAMES[prefix];
  const out: TensorInfo[] = [];
  for (let s = 0; s < numSlices; s++) out.push(inputs[names[s] ?? prefix + s] as TensorInfo);
  return out;
}

/**
 * Which tfjs kernels a backend's calls run, and attributes added to every call. tfjs keeps one
 * kernel per name and tfjs backend, so two LoRA backends computing on the same tfjs backend (cpu
 * and tpu-sim both use tfjs "cpu") need different names; `attrs` carries per-instance state the
 * kernels need (tpu-sim: the simulator with its flags and cost totals), read as `call.target`.
 */
export interface KernelTarget {
  /** Kernel name the shrink calls run under (default {@link LORA_SHRINK}); a registered kernel's `kernelName`. */
  readonly shrink?: string;
  /** Kernel name the expand calls run under (default {@link LORA_EXPAND}); a registered kernel's `kernelName`. */
  readonly expand?: string;
  /** Kernel name of the fused shrink + expand (default {@link LORA_LINEAR}); the backend has `linear` when one of its kernels has it. */
  readonly linear?: string;
  /** Per-instance values every call receives as `call.target` (tpu-sim: its simulator); `{}` when absent. */
  readonly attrs?: Readonly<Record<string, unknown>>;
}

const NO_ATTRS: Readonly<Record<string, never>> = Object.freeze({});

/** Runs a shrink call through the tfjs engine under the target's kernel name. */
export function runShrinkKernel(call: ShrinkCall, batch: KernelBatch = {}, target: KernelTarget = {}): Tensor3D {
  const { x, loraA, meta, scale, slotRanks, dims } = call;
  const attrs: LoRAShrinkAttrs = { meta, scale, slotRanks, dims, batch: batch.attrs ?? NO_ATTRS, target: target.attrs ?? NO_ATTRS };
  return engine().runKernel(
    target.shrink ?? LORA_SHRINK,
    packInputs({ x }, 'a', loraA, batch.index),
    attrs as unknown as NamedAttrMap,
  ) as Tensor3D;
}

/** Runs an expand call through the tfjs engine under the target's kernel name. */
export function runExpandKernel(call: ExpandCall, batch: KernelBatch = {}, target: KernelTarget = {}): Tensor2D {
  const { y, x, loraB, meta, outputSlices, offsetStart, addInputs, slotRanks, bLayout, dims } = call;
  const attrs: LoRAExpandAttrs = {
    meta,
    outputSlices,
    offsetStart,
    addInputs,
    slotRanks,
    bLayout,
    dims,
    batch: batch.attrs ?? NO_ATTRS,
    target: target.attrs ?? NO_ATTRS,
  };
  return engine().runKernel(
    target.expand ?? LORA_EXPAND,
    packInputs({ y, x }, 'b', loraB, batch.index),
    attrs as unknown as NamedAttrMap,
  ) as Tensor2D;
}

/** Runs a fused shrink + expand call through the tfjs engine under the target's kernel name. */
export function runLinearKernel(call: LinearCall, batch: KernelBatch = {}, target: KernelTarget = {}): Tensor2D {
  const { y, x, loraA, loraB, meta, scale, outputSlices, slotRanks, bLayout, dims } = call;
  const attrs: LoRALinearAttrs = {
    meta,
    scale,
    outputSlices,
    slotRanks,
    bLayout,
    dims,
    batch: batch.attrs ?? NO_ATTRS,
    target: target.attrs ?? NO_ATTRS,
  };
  const inputs = packInputs(packInputs({ y, x }, 'a', loraA, undefined), 'b', loraB, batch.index);
  return engine().runKernel(target.linear ?? LORA_LINEAR, inputs, attrs as unknown as NamedAttrMap) as Tensor2D;
}

/** For kernel implementations: the shrink call its kernel received, typed. */
export function shrinkKernelArgs(inputs: NamedTensorInfoMap, attrs: NamedAttrMap | undefined): ShrinkKernelCall {
  const a = attrs as unknown as LoRAShrinkAttrs;
  return {
    meta: a.meta,
    scale: a.scale,
    slotRanks: a.slotRanks,
    dims: a.dims,
    batch: a.batch,
    target: a.target,
    x: inputs.x as TensorInfo,
    loraA: unpackSlices(inputs, 'a', a.dims.slices),
    index: inputs.index,
  };
}

/** For kernel implementations: the expand call its kernel received, typed. */
export function expandKernelArgs(inputs: NamedTensorInfoMap, attrs: NamedAttrMap | undefined): ExpandKernelCall {
  const a = attrs as unknown as LoRAExpandAttrs;
  return {
    meta: a.meta,
    outputSlices: a.outputSlices,
    offsetStart: a.offsetStart,
    addInputs: a.addInputs,
    slotRanks: a.slotRanks,
    bLayout: a.bLayout,
    dims: a.dims,
    batch: a.batch,
    target: a.target,
    y: inputs.y as TensorInfo,
    x: inputs.x as TensorInfo,
    loraB: unpackSlices(inputs, 'b', a.dims.slices),
    index: inputs.index,
  };
}

/** For kernel implementations: the fused shrink + expand call its kernel received, typed. */
export function linearKernelArgs(inputs: NamedTensorInfoMap, attrs: NamedAttrMap | undefined): LinearKernelCall {
  const a = attrs as unknown as LoRALinearAttrs;
  return {
    meta: a.meta,
    scale: a.scale,
    outputSlices: a.outputSlices,
    slotRanks: a.slotRanks,
    bLayout: a.bLayout,
    dims: a.dims,
    batch: a.batch,
    target: a.target,
    y: inputs.y as TensorInfo,
    x: inputs.x as TensorInfo,
    loraA: unpackSlices(inputs, 'a', a.dims.slices),
    loraB: unpackSlices(inputs, 'b', a.dims.slices),
    index: inputs.index,
  };
}

/**
 * What a backend package passes to {@link defineLoRABackend}: its names, its tfjs kernels, optional
 * hooks, and the optional {@link LoRABackend} properties, which are passed through.
 */
export interface KernelBackendSpec {
  /** The backend's name (`LoRABackend.name`), used in error messages. */
  readonly name: string;
  /** The tfjs backend the kernels are registered for and that `init()` selects with `tf.setBackend`; E_BACKEND when it is not available. */
  readonly tfBackend: string;
  /** Shrink and expand kernels, registered for `tfBackend` the first time any instance inits. */
  readonly kernels: readonly KernelConfig[];
  /** Kernel names other than LoRAShrink / LoRAExpand, and per-instance call attributes (see KernelTarget). */
  readonly target?: KernelTarget;
  /** Runs before the tfjs backend is selected (load a wasm module, pick a device...). */
  prepare?(): Promise<void>;
  /** What every call of a batch adds (GPU backends: the uploaded token→slot index and how to read it). */
  batch?(meta: LoRAMapping): KernelBatch;
  /** Counters merged over `{ programsCompiled: 0, kernelCalls }` in `LoRABackend.stats()` (GPU backends: compiled programs, uploads held). */
  stats?(): LoRABackendStats;
  /** Frees what the backend holds (its {@link MappingUploads}); the kernels stay registered. */
  dispose?(): void;
  /** What to install when the tfjs backend is missing, for the E_BACKEND message. */
  readonly install?: string;
  /** See `LoRABackend.weightLayout`; default 'out-in'. */
  readonly weightLayout?: 'out-in' | 'in-out';
  /** See `LoRABackend.copiesHostArrays`. */
  readonly copiesHostArrays?: boolean;
  /** See `LoRABackend.hostMemory`. */
  readonly hostMemory?: boolean;
  /** See `LoRABackend.compilesPrograms`. */
  readonly compilesPrograms?: boolean;
  /** See `LoRABackend.maxBatchTokens`: read after `prepare` has run. */
  maxBatchTokens?(): number | undefined;
  /** See `LoRABackend.accuracy`. */
  readonly accuracy?: number;
  /** See `LoRABackend.appliesTokenScales`. */
  readonly appliesTokenScales?: boolean;
  /** See `LoRABackend.skipsPaddedRanks`. */
  readonly skipsPaddedRanks?: boolean;
  /** See `LoRABackend.readsSlotRankB`. */
  readonly readsSlotRankB?: boolean;
  /** See `LoRABackend.overwrite`. */
  overwrite?(tensor: Tensor, offset: number, values: Float32Array): boolean;
}

/**
 * Turns a list of tfjs kernels into a LoRABackend: the small factory object a backend package
 * exports. Kernels stay registered after dispose because other runtimes may share them.
 */
export function defineLoRABackend(spec: KernelBackendSpec): LoRABackend {
  let calls = 0;
  const linearName = spec.target?.linear ?? LORA_LINEAR;
  const fuses = spec.kernels.some((k) => k.kernelName === linearName);
  const backend: LoRABackend = {
    name: spec.name,
    tfBackend: spec.tfBackend,
    weightLayout: spec.weightLayout ?? 'out-in',
    copiesHostArrays: spec.copiesHostArrays === true,
    hostMemory: spec.hostMemory === true,
    compilesPrograms: spec.compilesPrograms === true,
    accuracy: spec.accuracy ?? 1e-4,
    appliesTokenScales: spec.appliesTokenScales === true,
    skipsPaddedRanks: spec.skipsPaddedRanks === true,
    readsSlotRankB: spec.readsSlotRankB === true,
    maxBatchTokens: () => spec.maxBatchTokens?.(),
    async init() {
      await spec.prepare?.();
      if (findBackend(spec.tfBackend) === null && !(await trySetBackend(spec.tfBackend))) {
        throw new LoRAError(
          'E_BACKEND',
          `the tfjs backend "${spec.tfBackend}" that LoRA backend "${spec.name}" computes on is not available; install and import ${spec.install ?? `@tensorflow/tfjs-backend-${spec.tfBackend}`}`,
        );
      }
      for (const kernel of spec.kernels) {
        if (getKernel(kernel.kernelName, kernel.backendName) === undefined) registerKernel(kernel);
      }
      if (getBackend() !== spec.tfBackend && !(await trySetBackend(spec.tfBackend))) {
        throw new LoRAError('E_BACKEND', `tf.setBackend("${spec.tfBackend}") failed for LoRA backend "${spec.name}"`);
      }
    },
    shrink(call) {
      calls++;
      return runShrinkKernel(call, spec.batch?.(call.meta), spec.target);
    },
    expand(call) {
      calls++;
      return runExpandKernel(call, spec.batch?.(call.meta), spec.target);
    },
    stats() {
      return { programsCompiled: 0, kernelCalls: calls, ...spec.stats?.() };
    },
    dispose() {
      spec.dispose?.();
    },
  };
  if (spec.overwrite !== undefined) backend.overwrite = spec.overwrite;
  if (fuses) {
    backend.linear = (call) => {
      calls++;
      return runLinearKernel(call, spec.batch?.(call.meta), spec.target);
    };
  }
  return backend;
}

async function trySetBackend(name: string): Promise<boolean> {
  try {
    return await setBackend(name);
  } catch {
    return false;
  }
}
