import { expandKernelArgs, LORA_EXPAND, LORA_SHRINK, shrinkKernelArgs, slotRank } from '@lora/core/backend';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import type { WebGPUBatchAttrs } from './batch-layout.js';
import { CopyProgram, ExpandProgram, SegmentExpandProgram, SegmentShrinkProgram, ShrinkProgram } from './programs.js';

const i32 = (...data: number[]) => ({ type: 'int32', data });
const f32 = (...data: number[]) => ({ type: 'float32', data });

/**
 * The programs' rank uniforms (`rankExpr` in programs.ts): each slot's true rank, capped at the
 * stacks' R (R for every slot when the call has no `slotRanks`). One i32 for a single-adapter batch,
 * else the L slots as ⌈L / 4⌉ int32 ×4 entries (zero past L), which tfjs lays out as WGSL's
 * `array<vec4<i32>, ⌈L / 4⌉>`.
 */
function rankUniforms(slotRanks: Int32Array | undefined, R: number, slots: number, single: number | null) {
  const rankOf = (s: number) => (s >= slots ? 0 : slotRank(slotRanks, s, R));
  if (single !== null) return [i32(rankOf(single))];
  const vecs = [];
  for (let s = 0; s < slots; s += 4) vecs.push(i32(rankOf(s), rankOf(s + 1), rankOf(s + 2), rankOf(s + 3)));
  return vecs;
}

/**
 * tfjs kernels for the "webgpu" backend: LoRAShrink and LoRAExpand. The backend object decides each
 * batch's path once (`call.batch.path`, see {@link WebGPUBatchAttrs}) and uploads the batch layout
 * (slot per token, tokens grouped by slot, SGMV tiles) as the call's int32 `index`: 'sgmv' → SGMV
 * programs over the layout's tiles, 'bgmv' → BGMV programs over its slot list, 'single' → BGMV
 * with the slot in a uniform and no index. Both run one program per slice; expand first copies y
 * ({@link CopyProgram}) and writes each slice's columns into that copy.
 *
 * @returns The shrink and expand `KernelConfig`s for backend "webgpu", for `KernelBackendSpec.kernels`.
 */
export function webgpuKernels(): KernelConfig[] {
  const shrink: KernelConfig = {
    kernelName: LORA_SHRINK,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const gpu = backend as WebGPUBackend;
      const { x, loraA, meta, scale, slotRanks, dims, index, batch: attrsOfBatch } = shrinkKernelArgs(inputs, attrs);
      const batch = attrsOfBatch as WebGPUBatchAttrs;
      const { tokens: T, hidden: H, rank: R } = dims;
      const rankVecs = Math.ceil(dims.slots / 4);
      const out = gpu.makeTensorInfo([dims.slices, T, R], 'float32');
      if (batch.path === 'sgmv') {
        const ranks = rankUniforms(slotRanks, R, dims.slots, null);
        const uniforms = (s: number) => [
          i32(T),
          i32(H),
          i32(R),
          i32(s),
          i32(batch.sortedOffset),
          i32(batch.tilesOffset),
          f32(scale),
          ...ranks,
        ];
        for (const [s, a] of loraA.entries()) {
          // A fresh program object per run: tfjs rewrites `shaderKey` in place (appending the
          // shapes), so a reused object would carry a longer key into the next slice and compile
          // the same WGSL again under it.
          const program = new SegmentShrinkProgram(out.shape, batch.numTiles, R, rankVecs);
          gpu.runWebGPUProgram(program, [x, a, index as TensorInfo], 'float32', uniforms(s), out);
        }
        return out;
      }
      const single = batch.path === 'single';
      const slot = single ? (meta.activeSlots[0] as number) : -1;
      const ranks = rankUniforms(slotRanks, R, dims.slots, single ? slot : null);
      for (const [s, a] of loraA.entries()) {
        // A fresh program object per run (see the sgmv path above).
        gpu.runWebGPUProgram(
          new ShrinkProgram(out.shape, T, R, H % 4 === 0, single, rankVecs),
          single ? [x, a] : [x, a, index as TensorInfo],
          'float32',
          [i32(T), i32(H), i32(R), i32(s), i32(slot), f32(scale), ...ranks],
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
      const {
        y,
        x,
        loraB,
        meta,
        outputSlices,
        offsetStart,
        addInputs,
        slotRanks,
        dims,
        index,
        batch: attrsOfBatch,
      } = expandKernelArgs(inputs, attrs);
      const batch = attrsOfBatch as WebGPUBatchAttrs;
      const { tokens: T, width: W, rank: R } = dims;
      const rankVecs = Math.ceil(dims.slots / 4);
      const add = addInputs ? 1 : 0;
      const single = batch.path === 'single';
      const slot = single ? (meta.activeSlots[0] as number) : -1;
      const ranks = rankUniforms(slotRanks, R, dims.slots, single ? slot : null);
      const out = gpu.runWebGPUProgram(new CopyProgram(y.shape), [y], 'float32');
      let col0 = offsetStart;
      for (const [s, b] of loraB.entries()) {
        const O = outputSlices[s] as number;
        if (batch.path === 'sgmv') {
          const program = new SegmentExpandProgram(out.shape, batch.numTiles, O, rankVecs);
          gpu.runWebGPUProgram(
            program,
            [y, x, b, index as TensorInfo],
            'float32',
            [i32(T), i32(W), i32(O), i32(col0), i32(R), i32(s), i32(add), i32(batch.sortedOffset), i32(batch.tilesOffset), ...ranks],
            out,
          );
        } else {
          const program = new ExpandProgram(out.shape, T, O, R % 4 === 0, single, rankVecs);
          const uniforms = [i32(T), i32(W), i32(O), i32(col0), i32(R), i32(s), i32(slot), i32(add), ...ranks];
          gpu.runWebGPUProgram(program, single ? [y, x, b] : [y, x, b, index as TensorInfo], 'float32', uniforms, out);
        }
        col0 += O;
      }
      return out;
    },
  };
  return [shrink, expand];
}
