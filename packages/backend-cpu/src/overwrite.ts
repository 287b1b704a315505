import { overwriteFits } from '@lora/core/backend';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { findBackend, type Tensor } from '@tensorflow/tfjs-core';

// In-place writes into a tensor's memory (`LoRABackend.overwrite`): an activated adapter goes into its
// slot of a stack without the whole stack being copied again. Both check the bounds against the
// tensor's own size and return false where the memory is not what they expect (the caller then makes
// a new tensor), so a wrong offset can never write outside the tensor. Memory another tensor shares
// (`tf.clone` and `reshape` share it and raise the backend's reference count) is refused too: the
// other tensor must keep its values.

/** tfjs "cpu": the tensor's values are a Float32Array in the backend's data map. */
export function overwriteOnHost(t: Tensor, offset: number, values: Float32Array): boolean {
  const backend = findBackend('cpu') as unknown as {
    data: { get(id: object): { values?: unknown; refCount?: number } | undefined };
  } | null;
  const info = backend?.data.get(t.dataId);
  const data = info?.values;
  if (!(data instanceof Float32Array) || data.length !== t.size || info?.refCount !== 1 || !overwriteFits(t, offset, values)) return false;
  data.set(values, offset);
  return true;
}

/** tfjs "wasm": the tensor lives on the module's heap at its `memoryOffset`. */
export function overwriteOnHeap(t: Tensor, offset: number, values: Float32Array): boolean {
  const backend = findBackend('wasm') as (BackendWasm & { wasm: { HEAPF32: Float32Array } }) | null;
  const info = backend?.dataIdMap.get(t.dataId);
  if (backend == null || info === undefined || info.refCount !== 1 || !overwriteFits(t, offset, values)) return false;
  // A view made now: heap growth replaces the buffer, so none is kept.
  new Float32Array(backend.wasm.HEAPF32.buffer, info.memoryOffset + offset * 4, values.length).set(values);
  return true;
}
