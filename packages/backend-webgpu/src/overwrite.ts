import { overwriteFits } from '@lora/core/backend';
import { findBackend, type Tensor } from '@tensorflow/tfjs-core';

/** What this file reads of tfjs-backend-webgpu's backend object (not in its typings). */
interface WebGPUInternals {
  tensorMap: { get(id: object): { values: unknown; refCount: number; resource?: unknown; external?: boolean } | undefined };
  queue: { writeBuffer(buffer: unknown, offset: number, data: Float32Array): void };
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
}

/**
 * `LoRABackend.overwrite` on tfjs-backend-webgpu: an activated adapter goes into its slot of a
 * stack with one `queue.writeBuffer` of its own bytes (issue #17: slot-only uploads), the way vLLM
 * copies an adapter into its slot of the stacked weights, instead of a new `[L, R, H]` stack
 * uploaded whole. Values tfjs holds on the host (a stack not uploaded yet, or one read back, which
 * tfjs caches there beside its buffer) are written too.
 *
 * tfjs records dispatches in a command encoder it submits later, and `writeBuffer` runs on the
 * queue at once: the pending commands are submitted first, so a dispatch recorded before this
 * write still reads the slot's old values (queue operations run in submission order).
 *
 * Returns false (the caller makes the stack anew) where the write would reach more than this
 * tensor: data shared with another tensor (refCount > 1), a buffer the user owns (`external`),
 * or a range outside the tensor.
 */
export function overwriteOnGpu(t: Tensor, offset: number, values: Float32Array): boolean {
  const gpu = findBackend('webgpu') as unknown as WebGPUInternals | null;
  const data = gpu?.tensorMap.get(t.dataId);
  if (gpu == null || data === undefined || data.refCount !== 1 || data.external === true) return false;
  if (!overwriteFits(t, offset, values)) return false;
  // Values on the host (not uploaded yet, or cached there by a read: tfjs keeps both), a buffer on
  // the GPU, or both: every copy that exists is written, so none goes stale.
  const host = data.values;
  const buffer = data.resource;
  const onHost = host instanceof Float32Array && host.length === t.size;
  const onGpu = typeof GPUBuffer !== 'undefined' && buffer instanceof GPUBuffer;
  if ((host != null && !onHost) || (buffer != null && !onGpu) || (!onHost && !onGpu)) return false;
  if (onGpu) {
    gpu.ensureCommandEncoderReady();
    gpu.endComputePassEncoder();
    gpu.submitQueue();
    gpu.queue.writeBuffer(buffer, offset * 4, values);
  }
  if (onHost) host.set(values, offset);
  return true;
}
