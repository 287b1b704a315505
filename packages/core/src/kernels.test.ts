import '@tensorflow/tfjs-backend-cpu';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { createLoRA } from './create.js';
import { defineLoRABackend, expandKernelArgs, LORA_SHRINK, shrinkKernelArgs } from './kernels.js';

describe('defineLoRABackend', () => {
  it('runs its kernels under the names and with the per-instance attributes of its target', async () => {
    const seen: Array<{ kernel: string; tag: unknown }> = [];
    // Two backends on the same tfjs backend: their own kernel names keep them apart, the attrs say which instance called.
    const kernels: tf.KernelConfig[] = [
      {
        kernelName: 'TestShrink',
        backendName: 'cpu',
        kernelFunc: ({ inputs, attrs, backend }) => {
          const { meta, loraA } = shrinkKernelArgs(inputs, attrs);
          seen.push({ kernel: 'shrink', tag: (attrs as { tag?: unknown }).tag });
          const rank = (loraA[0] as tf.TensorInfo).shape[1] as number;
          const size = loraA.length * meta.numTokens * rank;
          return (backend as MathBackendCPU).makeTensorInfo([loraA.length, meta.numTokens, rank], 'float32', new Float32Array(size));
        },
      },
      {
        kernelName: 'TestExpand',
        backendName: 'cpu',
        kernelFunc: ({ inputs, attrs, backend }) => {
          const { y } = expandKernelArgs(inputs, attrs);
          seen.push({ kernel: 'expand', tag: (attrs as { tag?: unknown }).tag });
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
      });
    const rts = await Promise.all(['first', 'second'].map((tag) => createLoRA({ backend: make(tag), maxLoras: 1, maxLoraRank: 2 })));
    for (const rt of rts) {
      rt.punica.updateMetadata({ tokenLoraIndices: Int32Array.of(0) });
      tf.tidy(() => rt.punica.addLoRALinear(tf.zeros([1, 3]), tf.ones([1, 4]), [tf.ones([1, 2, 4])], [tf.ones([1, 3, 2])], 1, [3]));
      rt.dispose();
    }
    expect(seen).toEqual([
      { kernel: 'shrink', tag: 'first' },
      { kernel: 'expand', tag: 'first' },
      { kernel: 'shrink', tag: 'second' },
      { kernel: 'expand', tag: 'second' },
    ]);
    // Nothing was registered under the shared names on the way.
    expect(tf.getKernel(LORA_SHRINK, 'cpu')).toBeUndefined();
  });
});
