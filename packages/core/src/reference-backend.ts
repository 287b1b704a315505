import { getBackend, setBackend, tensor2d, tensor3d } from '@tensorflow/tfjs-core';
import type { LoRABackend } from './backend.js';
import { checkBackendOptions } from './config.js';
import { LoRAError } from './errors.js';
import { referenceExpand, referenceShrink } from './reference.js';

/**
 * The float64 reference kernels behind the backend interface (`backend: 'reference'`): slow, exact
 * up to one float32 rounding, and independent of every real backend. Use it to check a model's
 * numbers, and as the oracle the conformance suite tests itself against. It works on any tfjs
 * backend (it reads inputs with dataSync), named by `backendOptions.tfBackend` (default "cpu").
 */
export function createReferenceBackend(options: Readonly<Record<string, unknown>> = {}): LoRABackend {
  checkBackendOptions('reference', options, ['tfBackend']);
  const tfBackend = typeof options.tfBackend === 'string' ? options.tfBackend : 'cpu';
  let calls = 0;
  return {
    name: 'reference',
    tfBackend,
    // It reads every input with dataSync; on tfjs cpu / wasm that is free, so core may too.
    hostMemory: tfBackend === 'cpu' || tfBackend === 'wasm',
    appliesTokenScales: true,
    async init() {
      if (getBackend() !== tfBackend && !(await setBackend(tfBackend))) {
        throw new LoRAError('E_BACKEND', `the reference backend could not select tfjs backend "${tfBackend}"`);
      }
    },
    shrink({ x, loraA, meta, scale, dims }) {
      calls++;
      const { tokens: numTokens, hidden, rank } = dims;
      const { out } = referenceShrink({
        x: x.dataSync(),
        numTokens,
        hidden,
        loraA: loraA.map((a) => a.dataSync()),
        rank,
        tokenLoraIndices: meta.tokenLoraIndices,
        scale,
        tokenScales: meta.tokenScales,
      });
      return tensor3d(Float32Array.from(out), [loraA.length, numTokens, rank]);
    },
    expand({ y, x, loraB, meta, outputSlices, offsetStart, addInputs, dims }) {
      calls++;
      const { tokens: numTokens, width, rank } = dims;
      const { out } = referenceExpand({
        y: y.dataSync(),
        numTokens,
        width,
        x: x.dataSync(),
        loraB: loraB.map((b) => b.dataSync()),
        outputSlices,
        rank,
        tokenLoraIndices: meta.tokenLoraIndices,
        offsetStart,
        addInputs,
      });
      return tensor2d(Float32Array.from(out), [numTokens, width]);
    },
    stats: () => ({ programsCompiled: 0, kernelCalls: calls }),
    dispose() {},
  };
}
