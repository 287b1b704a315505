import { LoRAError } from '../errors.js';

/** Device-slot state the adapter manager plans over: who holds each slot and when it was last used. */
export interface SlotState {
  readonly slots: readonly (string | null)[];
  readonly slotUse: readonly number[];
  readonly clock: number;
}

export interface SlotPlan extends SlotState {
  /** Slot per requested adapter, in request order. */
  readonly slotOf: ReadonlyMap<string, number>;
  /** Adapters that must be written into their slot (not already resident). */
  readonly writes: readonly { id: string; slot: number }[];
}

/**
 * Where each adapter of `ids` will sit, computed on copies so that nothing changes until every
 * check has passed (vLLM's LRU rule: a resident adapter stays; a new one takes a free slot, else
 * the least recently used slot whose adapter `canEvict` allows). Throws E_CAPACITY, having changed
 * nothing, when no slot can be had.
 */
export function planSlots(state: SlotState, ids: readonly string[], canEvict: (id: string) => boolean): SlotPlan {
  const slots = [...state.slots];
  const slotUse = [...state.slotUse];
  let clock = state.clock;
  const slotOf = new Map<string, number>();
  const writes: { id: string; slot: number }[] = [];
  const requested = new Set(ids);
  for (const id of ids) {
    if (slotOf.has(id)) continue;
    let slot = slots.indexOf(id);
    if (slot < 0) {
      slot = slots.indexOf(null);
      if (slot < 0) slot = leastRecentlyUsed(slots, slotUse, (other) => !requested.has(other) && canEvict(other));
      if (slot < 0) {
        throw new LoRAError(
          'E_CAPACITY',
          `cannot activate "${id}": all ${slots.length} slots (maxLoras) hold pinned adapters or adapters of the current batch (${slots.join(', ')})`,
        );
      }
      slots[slot] = id;
      writes.push({ id, slot });
    }
    slotUse[slot] = ++clock;
    slotOf.set(id, slot);
  }
  return { slots, slotUse, clock, slotOf, writes };
}

function leastRecentlyUsed(slots: readonly (string | null)[], slotUse: readonly number[], evictable: (id: string) => boolean): number {
  let best = -1;
  slots.forEach((id, slot) => {
    if (id === null || !evictable(id)) return;
    if (best < 0 || (slotUse[slot] as number) < (slotUse[best] as number)) best = slot;
  });
  return best;
}
