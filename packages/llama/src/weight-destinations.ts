import type { ModelConfig } from './config.js';
import { checkpointTensors, elements, packedTensors } from './modules.js';

/**
 * Where the loader decodes each expected tensor: an array of its own, or, for a tensor the model
 * packs with others (q/k/v, gate/up), its span of one array shared by the group, so that building
 * the model takes the group without another copy of three quarters of the weights. Decoding
 * straight into these arrays is also what keeps no view of a file alive.
 */
export class WeightDestinations {
  readonly #shapes: ReadonlyMap<string, readonly number[]>;
  /** Packed member → its group, its offset in the group's array and the group's length. */
  readonly #packing = new Map<string, { group: readonly string[]; offset: number; total: number }>();
  readonly #groups = new Map<readonly string[], Float32Array>();

  constructor(config: ModelConfig) {
    this.#shapes = new Map(checkpointTensors(config).map((t) => [t.name, t.shape]));
    for (const group of packedTensors(config)) {
      const sizes = group.map((n) => elements(this.#shapes.get(n) as readonly number[]));
      const total = sizes.reduce((a, b) => a + b, 0);
      let offset = 0;
      group.forEach((name, i) => {
        this.#packing.set(name, { group, offset, total });
        offset += sizes[i] as number;
      });
    }
  }

  /**
   * The array for `name` stored with `shape`, or undefined for a tensor the model does not expect
   * with that shape: the loader's checks after parsing refuse (or skip) those, as they would anyway.
   */
  for(name: string, shape: readonly number[]): Float32Array | undefined {
    const expected = this.#shapes.get(name);
    if (expected === undefined || expected.length !== shape.length || expected.some((d, i) => d !== shape[i])) return undefined;
    const n = elements(expected);
    const slot = this.#packing.get(name);
    if (slot === undefined) return new Float32Array(n);
    let array = this.#groups.get(slot.group);
    if (array === undefined) {
      array = new Float32Array(slot.total);
      this.#groups.set(slot.group, array);
    }
    return array.subarray(slot.offset, slot.offset + n);
  }
}
