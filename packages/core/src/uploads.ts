import { keep, type Tensor, tensor1d } from '@tensorflow/tfjs-core';
import type { LoRAMapping } from './metadata.js';

/** What a backend uploads for a batch: the int32 data, and whatever else it computed with it (offsets, counts). */
export interface MappingLayout {
  /** The values uploaded as one int32 tensor `[data.length]`, laid out as the backend's kernels read them. */
  readonly data: Int32Array;
}

/** A batch's upload: the tensor, and the layout it was made from (computed once, read by every call). */
export interface MappingUpload<L extends MappingLayout> {
  /** `layout.data` on the device, kept out of `tf.tidy`; freed when a newer batch's upload is made, or by `dispose()`. */
  readonly index: Tensor;
  /** What `build` returned for this mapping. */
  readonly layout: L;
}

/**
 * For GPU backends: a batch's mapping uploaded once as an int32 tensor and reused by every layer
 * of that batch (token and sampler mappings each get one). Uploads of older batches are freed when
 * a newer one arrives, so at most a couple are held; `held()` reports them for leak checks.
 */
export class MappingUploads<L extends MappingLayout = MappingLayout> {
  readonly #uploads = new Map<LoRAMapping, MappingUpload<L>>();

  /** The upload of `build(meta)` for this mapping, made on first use. */
  get(meta: LoRAMapping, build: (meta: LoRAMapping) => L): MappingUpload<L> {
    let upload = this.#uploads.get(meta);
    if (!upload) {
      for (const [m, old] of this.#uploads) {
        if (m.version < meta.version) {
          old.index.dispose();
          this.#uploads.delete(m);
        }
      }
      const layout = build(meta);
      // keep(): callers run inside tf.tidy; the upload outlives it, until a newer batch arrives.
      upload = { index: keep(tensor1d(layout.data, 'int32')), layout };
      this.#uploads.set(meta, upload);
    }
    return upload;
  }

  /** The uploads held now, for `LoRABackendStats`: leak checks count these tensors as held on purpose. */
  held(): {
    /** Upload tensors held now (an upload is freed once a newer batch's mapping is uploaded). */
    tensorsHeld: number;
    /** Their bytes, 4 per int32 element. */
    bytesHeld: number;
  } {
    const all = [...this.#uploads.values()];
    return { tensorsHeld: all.length, bytesHeld: all.reduce((n, u) => n + 4 * u.index.size, 0) };
  }

  /** Frees every upload (the backend's `dispose`); a later `get` uploads again. */
  dispose(): void {
    for (const u of this.#uploads.values()) u.index.dispose();
    this.#uploads.clear();
  }
}
