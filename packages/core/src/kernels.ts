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
  type Tensor2D,
  type Tensor3D,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import type { LoRABackend, LoRABackendStats } from './backend.js';
import { LoRAError } from './errors.js';
import type { LoRAMapping } from './metadata.js';

/**
 * Every backend registers its shrink and expand under these tfjs kernel names for its own tfjs
 * backend, so the calls run through the engine (tidy, memory accounting and profiling work as for
 * any tfjs op) and core can drive any backend the same way.
 */
export const LORA_SHRINK = 'LoRAShrink';
export const LORA_EXPAND = 'LoRAExpand';

export interface LoRAShrinkAttrs {
  readonly meta: LoRAMapping;
  readonly scale: number;
  readonly numSlices: number;
}

export interface LoRAExpandAttrs {
  readonly meta: LoRAMapping;
  readonly outputSlices: readonly number[];
  readonly offsetStart: number;
  readonly addInputs: boolean;
  readonly numSlices: number;
}

/** Variable-length slice lists travel as inputs named `${prefix}0`, `${prefix}1`, ... */
function packSlices(inputs: NamedTensorMap, prefix: string, tensors: readonly Tensor3D[]): NamedTensorMap {
  tensors.forEach((t, s) => {
    inputs[`${prefix}${s}`] = t;
  });
  return inputs;
}

function unpackSlices(inputs: NamedTensorInfoMap, prefix: string, numSlices: number): TensorInfo[] {
  return Array.from({ length: numSlices }, (_, s) => inputs[`${prefix}${s}`] as TensorInfo);
}

/**
 * Which tfjs kernels a backend's calls run, and attributes added to every call. tfjs keeps one
 * kernel per name and tfjs backend, so two LoRA backends computing on the same tfjs backend (cpu
 * and tpu-sim both use tfjs "cpu") need different names; `attrs` carries per-instance state the
 * kernels need (tpu-sim: the simulator with its flags and cost totals).
 */
export interface KernelTarget {
  readonly shrink?: string;
  readonly expand?: string;
  readonly attrs?: Readonly<Record<string, unknown>>;
}

/** `extra`: backend-specific inputs such as an uploaded token→slot index (GPU backends). */
export function runShrinkKernel(
  x: Tensor2D,
  loraA: readonly Tensor3D[],
  meta: LoRAMapping,
  scale: number,
  extra: NamedTensorMap = {},
  target: KernelTarget = {},
): Tensor3D {
  const attrs: LoRAShrinkAttrs = { ...target.attrs, meta, scale, numSlices: loraA.length };
  return engine().runKernel(
    target.shrink ?? LORA_SHRINK,
    packSlices({ ...extra, x }, 'a', loraA),
    attrs as unknown as NamedAttrMap,
  ) as Tensor3D;
}

export function runExpandKernel(
  y: Tensor2D,
  x: Tensor3D,
  loraB: readonly Tensor3D[],
  meta: LoRAMapping,
  outputSlices: readonly number[],
  offsetStart: number,
  addInputs: boolean,
  extra: NamedTensorMap = {},
  target: KernelTarget = {},
): Tensor2D {
  const attrs: LoRAExpandAttrs = { ...target.attrs, meta, outputSlices, offsetStart, addInputs, numSlices: loraB.length };
  return engine().runKernel(
    target.expand ?? LORA_EXPAND,
    packSlices({ ...extra, y, x }, 'b', loraB),
    attrs as unknown as NamedAttrMap,
  ) as Tensor2D;
}

/** For kernel implementations: the shrink kernel's inputs and attributes, typed. */
export function shrinkKernelArgs(inputs: NamedTensorInfoMap, attrs: NamedAttrMap | undefined) {
  const a = attrs as unknown as LoRAShrinkAttrs;
  return { x: inputs.x as TensorInfo, loraA: unpackSlices(inputs, 'a', a.numSlices), inputs, ...a };
}

/** For kernel implementations: the expand kernel's inputs and attributes, typed. */
export function expandKernelArgs(inputs: NamedTensorInfoMap, attrs: NamedAttrMap | undefined) {
  const a = attrs as unknown as LoRAExpandAttrs;
  return { y: inputs.y as TensorInfo, x: inputs.x as TensorInfo, loraB: unpackSlices(inputs, 'b', a.numSlices), inputs, ...a };
}

export interface KernelBackendSpec {
  readonly name: string;
  readonly tfBackend: string;
  /** Shrink and expand kernels, registered for `tfBackend` the first time any instance inits. */
  readonly kernels: readonly KernelConfig[];
  /** Kernel names other than LoRAShrink / LoRAExpand, and per-instance call attributes (see KernelTarget). */
  readonly target?: KernelTarget;
  /** Runs before the tfjs backend is selected (load a wasm module, pick a device...). */
  prepare?(): Promise<void>;
  /** Backend-specific inputs of a batch's calls, given to both kernels (GPU backends: the uploaded token→slot index). */
  inputs?(meta: LoRAMapping): NamedTensorMap;
  stats?(): LoRABackendStats;
  dispose?(): void;
  /** What to install when the tfjs backend is missing, for the E_BACKEND message. */
  readonly install?: string;
  readonly weightLayout?: 'out-in' | 'in-out';
  /** See `LoRABackend.copiesHostArrays`. */
  readonly copiesHostArrays?: boolean;
  /** See `LoRABackend.accuracy`. */
  readonly accuracy?: number;
}

/**
 * Turns a list of tfjs kernels into a LoRABackend: the small factory object a backend package
 * exports. Kernels stay registered after dispose because other runtimes may share them.
 */
export function defineLoRABackend(spec: KernelBackendSpec): LoRABackend {
  let calls = 0;
  return {
    name: spec.name,
    tfBackend: spec.tfBackend,
    weightLayout: spec.weightLayout ?? 'out-in',
    copiesHostArrays: spec.copiesHostArrays === true,
    accuracy: spec.accuracy ?? 1e-4,
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
    shrink(x, loraA, meta, scale) {
      calls++;
      return runShrinkKernel(x, loraA, meta, scale, spec.inputs?.(meta), spec.target);
    },
    expand(y, x, loraB, meta, outputSlices, offsetStart, addInputs) {
      calls++;
      return runExpandKernel(y, x, loraB, meta, outputSlices, offsetStart, addInputs, spec.inputs?.(meta), spec.target);
    },
    stats() {
      return { programsCompiled: 0, kernelCalls: calls, ...spec.stats?.() };
    },
    dispose() {
      spec.dispose?.();
    },
  };
}

async function trySetBackend(name: string): Promise<boolean> {
  try {
    return await setBackend(name);
  } catch {
    return false;
  }
}
