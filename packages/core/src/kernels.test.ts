import '@tensorflow/tfjs-backend-cpu';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { createLoRA } from './create.js';
import { defineLoRABackend, expandKernelArgs, LORA_SHRINK, shrinkKernelArgs } from './kernels.js';

describe('defineLoRABackend', () => {
  it('runs its kernels under the names and with the per-instance attributes of its target', async () => {
    const seen: Array<{ kernel: string; tag: unknown; dims?: unknown; batch?: unknown; index?: number }> = [];
    // Two backends on the same tfjs backend: their own kernel names keep them apart, the attrs say which instance called.
    const kernels: tf.KernelConfig[] = [
      {
        kernelName: 'TestShrink',
        backendName: 'cpu',
        kernelFunc: ({ inputs, attrs, backend }) => {
          const { dims, target, batch, index } = shrinkKernelArgs(inputs, attrs);
          const cpu = backend as MathBackendCPU;
          const indexed = index === undefined ? undefined : (cpu.data.get(index.dataId).values as Int32Array)[0];
          seen.push({ kernel: 'shrink', tag: target.tag, dims, batch, index: indexed });
          const size = dims.slices * dims.tokens * dims.rank;
          return cpu.makeTensorInfo([dims.slices, dims.tokens, dims.rank], 'float32', new Float32Array(size));
        },
      },
      {
        kernelName: 'TestExpand',
        backendName: 'cpu',
        kernelFunc: ({ inputs, attrs, backend }) => {
          const { y, target, dims } = expandKernelArgs(inputs, attrs);
          seen.push({ kernel: 'expand', tag: target.tag, dims });
          const cpu = backend as MathBackendCPU;
          return cpu.makeTensorInfo(y.shape, 'float32', (cpu.data.get(y.dataId).values as Float32Array).slice());
        },
      },
    ];
    const make = (tag: string) =>
      defineLoRABackend({
        name: 'test',
        tfBackend: 'cpu',
        kernels,
        target: { shrink: 'TestShrink', expand: 'TestExpand', attrs: { tag } },
        // Per batch: an uploaded index (here the batch's first slot + 40) and a plain attribute.
        batch: (meta) => ({ index: tf.keep(tf.tensor1d([(meta.tokenLoraIndices[0] as number) + 40], 'int32')), attrs: { path: tag } }),
      });
    const rts = await Promise.all(['first', 'second'].map((tag) => createLoRA({ backend: make(tag), maxLoras: 1, maxLoraRank: 2 })));
    for (const rt of rts) {
      rt.punica.updateMetadata({ tokenLoraIndices: Int32Array.of(0) });
      tf.tidy(() => rt.punica.addLoRALinear(tf.zeros([1, 3]), tf.ones([1, 4]), [tf.ones([1, 2, 4])], [tf.ones([1, 3, 2])], 1, [3]));
      rt.dispose();
    }
    const shrinkDims = { tokens: 1, hidden: 4, rank: 2, slots: 1, slices: 1 };
    const expandDims = { tokens: 1, width: 3, rank: 2, slots: 1, slices: 1 };
    expect(seen).toEqual([
      { kernel: 'shrink', tag: 'first', dims: shrinkDims, batch: { path: 'first' }, index: 40 },
      { kernel: 'expand', tag: 'first', dims: expandDims },
      { kernel: 'shrink', tag: 'second', dims: shrinkDims, batch: { path: 'second' }, index: 40 },
      { kernel: 'expand', tag: 'second', dims: expandDims },
    ]);
    // Nothing was registered under the shared names on the way.
    expect(tf.getKernel(LORA_SHRINK, 'cpu')).toBeUndefined();
  });
});
