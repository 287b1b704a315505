import { expandKernelArgs, LORA_EXPAND, LORA_SHRINK, shrinkKernelArgs, slotRank } from '@lora/core/backend';
import type { MathBackendWebGL } from '@tensorflow/tfjs-backend-webgl';
import type { KernelConfig } from '@tensorflow/tfjs-core';
import { ExpandProgram, ShrinkProgram } from './programs.js';

/**
 * The programs' rank uniforms: each slot's true rank, capped at the stacks' R (R for every slot when
 * the call has no `slotRanks`): `slotRank` for a single-adapter batch, else `ranks[L]`.
 */
function rankValues(slotRanks: Int32Array | undefined, R: number, slots: number, single: number | null): number[][] {
  return single !== null ? [[slotRank(slotRanks, single, R)]] : [Array.from({ length: slots }, (_, s) => slotRank(slotRanks, s, R))];
}

/**
 * tfjs kernels for the "webgl" backend. The token→slot index arrives as the call's int32 `index`
 * (uploaded once per batch by the backend object); a single-adapter batch passes none and
 * the programs read the slot from a uniform. The programs loop over pairs of the shared dimension
 * (packed texels); an odd size reads the zeros tfjs pads packed textures with. Each slot's true rank
 * travels as a uniform (`skipsPaddedRanks`): expand's reduction stops there, shrink skips and
 * zeroes the rows past it.
 */
export function webglKernels(): KernelConfig[] {
  const shrink: KernelConfig = {
    kernelName: LORA_SHRINK,
    backendName: 'webgl',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const gl = backend as MathBackendWebGL;
      const { x, loraA, meta, scale, slotRanks, dims, index: idx } = shrinkKernelArgs(inputs, attrs);
      const program = new ShrinkProgram(dims.slices, dims.tokens, dims.rank, !idx, dims.slots);
      const slot = idx ? null : (meta.activeSlots[0] as number);
      const uniforms = [
        [Math.ceil(dims.hidden / 2)],
        [scale],
        ...(slot === null ? [] : [[slot]]),
        ...rankValues(slotRanks, dims.rank, dims.slots, slot),
      ];
      return gl.runWebGLProgram(program, [x, ...loraA, ...(idx ? [idx] : [])], 'float32', uniforms);
    },
  };
  const expand: KernelConfig = {
    kernelName: LORA_EXPAND,
    backendName: 'webgl',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const gl = backend as MathBackendWebGL;
      const { y, x, loraB, meta, outputSlices, offsetStart, addInputs, slotRanks, dims, index: idx } = expandKernelArgs(inputs, attrs);
      const program = new ExpandProgram([dims.tokens, dims.width], dims.slices, !idx, dims.slots);
      const slot = idx ? null : (meta.activeSlots[0] as number);
      const uniforms = [
        [offsetStart],
        [addInputs ? 1 : 0],
        ...outputSlices.map((o) => [o]),
        ...(slot === null ? [] : [[slot]]),
        ...rankValues(slotRanks, dims.rank, dims.slots, slot),
      ];
      return gl.runWebGLProgram(program, [y, x, ...loraB, ...(idx ? [idx] : [])], 'float32', uniforms);
    },
  };
  return [shrink, expand];
}
