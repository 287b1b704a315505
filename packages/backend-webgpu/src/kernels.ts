import { expandKernelArgs, LORA_EXPAND, LORA_SHRINK, type LoRAMapping, shrinkKernelArgs } from '@lora/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import { TOKEN_TILE } from './batch-layout.js';
import { CopyProgram, ExpandProgram, SegmentExpandProgram, SegmentShrinkProgram, ShrinkProgram } from './programs.js';

/**
 * tfjs kernels for the "webgpu" backend. The batch layout (slot per token, tokens grouped by slot,
 * SGMV tiles) arrives as one extra int32 input uploaded once per batch by the backend object,
 * which also picks the path by naming it: `segments` → SGMV programs, `batch` → BGMV programs,
 * none → single-adapter BGMV with the slot in a uniform.
 */

const i32 = (...data: number[]) => ({ type: 'int32', data });
const f32 = (...data: number[]) => ({ type: 'float32', data });

/** Tiles of `batchLayout`: ⌈segment / 8⌉ per segment plus those of the tokens without LoRA. */
function tileCount(meta: LoRAMapping): number {
  const tiles = meta.segments.reduce((n, s) => n + Math.ceil(s.length / TOKEN_TILE), 0);
  return tiles + Math.ceil((meta.numTokens - meta.numLoRATokens) / TOKEN_TILE);
}

export function webgpuKernels(): KernelConfig[] {
  const shrink: KernelConfig = {
    kernelName: LORA_SHRINK,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const gpu = backend as WebGPUBackend;
      const { x, loraA, meta, scale, inputs: all } = shrinkKernelArgs(inputs, attrs);
      const [T, H] = x.shape as [number, number];
      const R = (loraA[0] as TensorInfo).shape[1] as number;
      const { batch, segments } = all as { batch?: TensorInfo; segments?: TensorInfo };
      const out = gpu.makeTensorInfo([loraA.length, T, R], 'float32');
      if (segments) {
        const program = new SegmentShrinkProgram(out.shape, tileCount(meta), R);
        for (const [s, a] of loraA.entries()) {
          gpu.runWebGPUProgram(program, [x, a, segments], 'float32', [i32(T), i32(H), i32(R), i32(s), i32(T), i32(2 * T), f32(scale)], out);
        }
        return out;
      }
      const slot = batch ? -1 : (meta.activeSlots[0] as number);
      const program = new ShrinkProgram(out.shape, T, R, H % 4 === 0, !batch);
      for (const [s, a] of loraA.entries()) {
        gpu.runWebGPUProgram(
          program,
          batch ? [x, a, batch] : [x, a],
          'float32',
          [i32(T), i32(H), i32(R), i32(s), i32(slot), f32(scale)],
          out,
        );
      }
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
      const { batch, segments } = all as { batch?: TensorInfo; segments?: TensorInfo };
      const add = addInputs ? 1 : 0;
      const slot = batch || segments ? -1 : (meta.activeSlots[0] as number);
      const out = gpu.runWebGPUProgram(new CopyProgram(y.shape), [y], 'float32');
      let col0 = offsetStart;
      for (const [s, b] of loraB.entries()) {
        const O = outputSlices[s] as number;
        if (segments) {
          const program = new SegmentExpandProgram(out.shape, tileCount(meta), O);
          gpu.runWebGPUProgram(
            program,
            [y, x, b, segments],
            'float32',
            [i32(T), i32(W), i32(O), i32(col0), i32(R), i32(s), i32(add), i32(T), i32(2 * T)],
            out,
          );
        } else {
          const program = new ExpandProgram(out.shape, T, O, R % 4 === 0, !batch);
          const uniforms = [i32(T), i32(W), i32(O), i32(col0), i32(R), i32(s), i32(slot), i32(add)];
          gpu.runWebGPUProgram(program, batch ? [y, x, b, batch] : [y, x, b], 'float32', uniforms, out);
        }
        col0 += O;
      }
      return out;
    },
  };
  return [shrink, expand];
}
