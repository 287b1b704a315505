import { expandKernelArgs, LORA_EXPAND, LORA_SHRINK, shrinkKernelArgs } from '@lora/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import { CopyProgram, ExpandProgram, ShrinkProgram } from './programs.js';

/**
 * tfjs kernels for the "webgpu" backend. The token→slot index arrives as an extra int32 input
 * (`idx`, uploaded once per batch by the backend object); a single-adapter batch passes none and
 * the programs read the slot from a uniform instead — no per-token lookup.
 */

const i32 = (...data: number[]) => ({ type: 'int32', data });
const f32 = (...data: number[]) => ({ type: 'float32', data });

export function webgpuKernels(): KernelConfig[] {
  const shrink: KernelConfig = {
    kernelName: LORA_SHRINK,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const gpu = backend as WebGPUBackend;
      const { x, loraA, meta, scale, inputs: all } = shrinkKernelArgs(inputs, attrs);
      const [T, H] = x.shape as [number, number];
      const R = (loraA[0] as TensorInfo).shape[1] as number;
      const idx = all.idx as TensorInfo | undefined;
      const single = meta.singleLoRA;
      const slot = single ? (meta.activeSlots[0] as number) : -1;
      const out = gpu.makeTensorInfo([loraA.length, T, R], 'float32');
      const program = new ShrinkProgram(out.shape, T, R, H % 4 === 0, single);
      loraA.forEach((a, s) => {
        gpu.runWebGPUProgram(
          program,
          single ? [x, a] : [x, a, idx as TensorInfo],
          'float32',
          [i32(T), i32(H), i32(R), i32(s), i32(slot), f32(scale)],
          out,
        );
      });
      return out;
    },
  };
  const expand: KernelConfig = {
    kernelName: LORA_EXPAND,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const gpu = backend as WebGPUBackend;
      const { y, x, loraB, meta, outputSlices, offsetStart, addInputs, inputs: all } = expandKernelArgs(inputs, attrs);
      const [T, W] = y.shape as [number, number];
      const R = x.shape[2] as number;
      const idx = all.idx as TensorInfo | undefined;
      const single = meta.singleLoRA;
      const slot = single ? (meta.activeSlots[0] as number) : -1;
      const out = gpu.runWebGPUProgram(new CopyProgram(y.shape), [y], 'float32');
      let col0 = offsetStart;
      loraB.forEach((b, s) => {
        const O = outputSlices[s] as number;
        const program = new ExpandProgram(out.shape, T, O, R % 4 === 0, single);
        const inputsFor = single ? [y, x, b] : [y, x, b, idx as TensorInfo];
        gpu.runWebGPUProgram(
          program,
          inputsFor,
          'float32',
          [i32(T), i32(W), i32(O), i32(col0), i32(R), i32(s), i32(slot), i32(addInputs ? 1 : 0)],
          out,
        );
        col0 += O;
      });
      return out;
    },
  };
  return [shrink, expand];
}
