import { expandKernelArgs, LORA_EXPAND, LORA_SHRINK, shrinkKernelArgs } from '@lora/core';
import type { MathBackendWebGL } from '@tensorflow/tfjs-backend-webgl';
import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import { ExpandProgram, ShrinkProgram } from './programs.js';

/**
 * tfjs kernels for the "webgl" backend. The token→slot index arrives as an extra int32 input
 * (`idx`, uploaded once per batch by the backend object); a single-adapter batch passes none and
 * the programs read the slot from a uniform. The programs loop over pairs of the shared dimension
 * (packed texels); an odd size reads the zeros tfjs pads packed textures with.
 */
export function webglKernels(): KernelConfig[] {
  const shrink: KernelConfig = {
    kernelName: LORA_SHRINK,
    backendName: 'webgl',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const gl = backend as MathBackendWebGL;
      const { x, loraA, meta, scale, inputs: all } = shrinkKernelArgs(inputs, attrs);
      const [T, H] = x.shape as [number, number];
      const R = (loraA[0] as TensorInfo).shape[1] as number;
      const idx = all.idx as TensorInfo | undefined;
      const program = new ShrinkProgram(loraA.length, T, R, !idx);
      const uniforms = [[Math.ceil(H / 2)], [scale], ...(idx ? [] : [[meta.activeSlots[0] as number]])];
      return gl.runWebGLProgram(program, [x, ...loraA, ...(idx ? [idx] : [])], 'float32', uniforms);
    },
  };
  const expand: KernelConfig = {
    kernelName: LORA_EXPAND,
    backendName: 'webgl',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const gl = backend as MathBackendWebGL;
      const { y, x, loraB, meta, outputSlices, offsetStart, addInputs, inputs: all } = expandKernelArgs(inputs, attrs);
      const idx = all.idx as TensorInfo | undefined;
      const program = new ExpandProgram(y.shape, loraB.length, !idx);
      const uniforms = [
        [Math.ceil((x.shape[2] as number) / 2)],
        [offsetStart],
        [addInputs ? 1 : 0],
        ...outputSlices.map((o) => [o]),
        ...(idx ? [] : [[meta.activeSlots[0] as number]]),
      ];
      return gl.runWebGLProgram(program, [y, x, ...loraB, ...(idx ? [idx] : [])], 'float32', uniforms);
    },
  };
  return [shrink, expand];
}
