import '@tensorflow/tfjs-backend-cpu';
import { checkBackendOptions, defineLoRABackend, type LoRABackend, registerLoRABackend } from '@lora/core';
import { cpuKernels } from './kernels/register.js';

export { type ExpandArgs, expandSegments } from './kernels/expand.js';
export { cpuKernels } from './kernels/register.js';
export { type ShrinkArgs, shrinkSegments } from './kernels/shrink.js';

/**
 * The CPU backend: SGMV-style typed-array kernels registered as tfjs kernels for tfjs "cpu".
 * `createLoRA({ backend: 'cpu' })` finds it by name once this module is imported (or installed).
 */
export function createCpuBackend(options: Readonly<Record<string, unknown>> = {}): LoRABackend {
  checkBackendOptions('cpu', options, []);
  return defineLoRABackend({ name: 'cpu', tfBackend: 'cpu', kernels: cpuKernels('cpu'), install: '@tensorflow/tfjs-backend-cpu' });
}

registerLoRABackend('cpu', createCpuBackend);
