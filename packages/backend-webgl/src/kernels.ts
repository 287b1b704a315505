import { expandKernelArgs, LORA_EXPAND, LORA_SHRINK, shrinkKernelArgs } from '@lora/core/backend';
import type { MathBackendWebGL } from '@tensorflow/tfjs-backend-webgl';
import type { KernelConfig } from '@tensorflow/tfjs-core';
import { ExpandProgram, ShrinkProgram } from './programs.js';

/**
 * tfjs kernels for the "webgl" backend. The token→slot index arrives as the call's int32 `index`
 * (uploaded once per batch by the backend object); a single-adapter batch passes none and
 * the programs read the slot from a uniform. The programs loop over pairs of the shared dimension
 * (packed texels); an odd size reads the zeros tfjs pads packed textures with.
 */
export function webglKernels(): KernelConfig[] {
  const shrink: KernelConfig = {
    kernelName: LORA_SHRINK,
    backendName: 'webgl',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const gl = backend as MathBackendWebGL;
      const { x, loraA, meta, scale, dims, index: idx } = shrinkKernelArgs(inputs, attrs);
      const program = new ShrinkProgram(dims.slices, dims.tokens, dims.rank, !idx);
      const uniforms = [[Math.ceil(dims.hidden / 2)], [scale], ...(idx ? [] : [[meta.activeSlots[0] as number]])];
      return gl.runWebGLProgram(program, [x, ...loraA, ...(idx ? [idx] : [])], 'float32', uniforms);
    },
  };
  const expand: KernelConfig = {
    kernelName: LORA_EXPAND,
    backendName: 'webgl',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const gl = backend as MathBackendWebGL;
      const { y, x, loraB, meta, outputSlices, offsetStart, addInputs, dims, index: idx } = expandKernelArgs(inputs, attrs);
      const program = new ExpandProgram([dims.tokens, dims.width], dims.slices, !idx);
      const uniforms = [
        [Math.ceil(dims.rank / 2)],
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
