import { keep, type Tensor, tensor1d } from '@tensorflow/tfjs-core';
import type { LoRAMapping } from './metadata.js';

/**
 * For GPU backends: a batch's mapping uploaded once as an int32 tensor and reused by every layer
 * of that batch (token and sampler mappings each get one). Uploads of older batches are freed when
 * a newer one arrives, so at most a couple are held; `held()` reports them for leak checks.
 */
export class MappingUploads {
  readonly #uploads = new Map<LoRAMapping, Tensor>();

  /** The upload of `build(meta)` for this mapping, made on first use. */
  get(meta: LoRAMapping, build: (meta: LoRAMapping) => Int32Array): Tensor {
    let t = this.#uploads.get(meta);
    if (!t) {
      for (const [m, old] of this.#uploads) {
        if (m.version < meta.version) {
          old.dispose();
          this.#uploads.delete(m);
        }
      }
      // keep(): callers run inside tf.tidy; the upload outlives it, until a newer batch arrives.
      t = keep(tensor1d(build(meta), 'int32'));
      this.#uploads.set(meta, t);
    }
    return t;
  }

  held(): { tensorsHeld: number; bytesHeld: number } {
    const all = [...this.#uploads.values()];
    return { tensorsHeld: all.length, bytesHeld: all.reduce((n, t) => n + 4 * t.size, 0) };
  }

  dispose(): void {
    for (const t of this.#uploads.values()) t.dispose();
    this.#uploads.clear();
  }
}
