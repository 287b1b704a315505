/**
 * @packageDocumentation
 * `@lora/core/backend`: what a package built on core needs and an app does not — kernel
 * registration and typed kernel calls, per-batch uploads, the static-shape buckets, the batch
 * mapping, the registry's write side, and bundler-safe Node built-ins. The user API is `@lora/core`.
 */
export type { LoRABackend, LoRABackendFactory, LoRABackendStats } from './backend.js';
export { bucketSize, bucketTokens, MIN_TOKEN_BUCKET, nextPowerOfTwo, roundUp, tokenBuckets } from './bucketing.js';
export {
  type BLayout,
  bRowStride,
  type ExpandCall,
  type ExpandDims,
  expandCall,
  type LinearCall,
  type LinearDims,
  linearCall,
  type ShrinkCall,
  type ShrinkDims,
  shrinkCall,
  slotRank,
} from './calls.js';
export { checkBackendOptions } from './config.js';
export { describeValue, LoRAError, type LoRAErrorCode } from './errors.js';
export { type HostExpandCall, type HostKernelSpec, type HostShrinkCall, hostMemoryKernels, scaleShrinkRows } from './host-kernels.js';
export {
  type BatchAttrs,
  defineLoRABackend,
  type ExpandKernelCall,
  expandKernelArgs,
  type KernelBackendSpec,
  type KernelBatch,
  type KernelTarget,
  type LinearKernelCall,
  LORA_EXPAND,
  LORA_LINEAR,
  LORA_SHRINK,
  type LoRAExpandAttrs,
  type LoRALinearAttrs,
  type LoRAShrinkAttrs,
  linearKernelArgs,
  runExpandKernel,
  runLinearKernel,
  runShrinkKernel,
  type ShrinkKernelCall,
  shrinkKernelArgs,
} from './kernels.js';
export { overwriteFits } from './layers/stack.js';
export { computeMapping, computeMetadata, type LoRAMapping, type LoRAMetadata, type LoRASegment } from './metadata.js';
export { isNode, type NodeBuiltins, nodeBuiltins } from './node.js';
export { registerLoRABackend, unregisterLoRABackend } from './registry.js';
export { type MappingLayout, type MappingUpload, MappingUploads } from './uploads.js';
