import type { LoRAAdapter, LoRAErrorCode } from '@lora/core';

/**
 * The adapter manager and the batch mapping as a plain model, written from the contract (README
 * "A model with PEFT adapters", vLLM's LRU adapter manager) rather than from the implementation:
 * host cache in LRU order, device slots with a use clock, pins, the current batch, the batch
 * mapping, and what each layer's slot holds. Every operation either returns the next state or the
 * set of error codes that would justify refusing it; the real runtime must agree.
 */

interface SliceContent {
  /** PEFT layouts: A `[r, in]`, B `[out, r]`. */
  readonly a: Float32Array;
  readonly b: Float32Array;
  readonly rank: number;
  readonly scale: number;
}

/** One layer's slot: per slice its content, or null for zeros. */
export type SlotContent = readonly (SliceContent | null)[];

export interface ModelLayer {
  readonly modules: readonly string[];
}

export interface Limits {
  readonly maxLoras: number;
  readonly maxLoraRank: number;
  readonly maxCpuLoras: number;
  /** The host cache's byte budget: every registered adapter's A, B and magnitudes as float32. */
  readonly maxCpuLoraBytes: number;
  readonly maxNumTokens: number;
}

interface Registered {
  readonly adapter: LoRAAdapter;
  readonly bytes: number;
  pinned: boolean;
}

/** What an adapter takes in the host cache: its weights' floats at their true ranks, 4 bytes each. */
const weightBytes = (adapter: LoRAAdapter): number =>
  4 * [...adapter.modules.values()].reduce((n, m) => n + m.a.length + m.b.length + (m.magnitude?.length ?? 0), 0);

interface Plan {
  readonly slots: (string | null)[];
  readonly slotUse: number[];
  readonly clock: number;
  readonly slotOf: Map<string, number>;
  readonly writes: Array<[string, number]>;
}

export type Outcome = { ok: true } | { ok: false; codes: ReadonlySet<LoRAErrorCode> };

const refuse = (...codes: LoRAErrorCode[]): Outcome => ({ ok: false, codes: new Set(codes) });
const OK: Outcome = { ok: true };

export class ManagerModel {
  readonly limits: Limits;
  readonly layers: readonly ModelLayer[];
  /** LRU order, oldest first. */
  registered = new Map<string, Registered>();
  slots: (string | null)[];
  slotUse: number[];
  clock = 0;
  batch = new Set<string>();
  /** The batch mapping punica holds (tokens and sampler rows), or undefined before the first. */
  meta: { tokens: number[]; sampler: number[] } | undefined;
  version = 0;
  /** content[layer][slot]. */
  content: SlotContent[][];

  constructor(limits: Limits, layers: readonly ModelLayer[]) {
    this.limits = limits;
    this.layers = layers;
    this.slots = new Array(limits.maxLoras).fill(null);
    this.slotUse = new Array(limits.maxLoras).fill(0);
    this.content = layers.map((l) => Array.from({ length: limits.maxLoras }, () => l.modules.map(() => null)));
  }

  /** Bytes the registered adapters take (the runtime's `adapters.hostMemory`). */
  get hostBytes(): number {
    let n = 0;
    for (const r of this.registered.values()) n += r.bytes;
    return n;
  }

  isPinned(id: string): boolean {
    return this.registered.get(id)?.pinned ?? false;
  }

  register(adapter: LoRAAdapter): Outcome {
    if (this.registered.has(adapter.id)) return refuse('E_CONFIG');
    // Least recently used first, skipping pinned adapters and the batch's, until both limits hold; all or nothing.
    const bytes = weightBytes(adapter);
    const fits = (count: number, held: number) => count < this.limits.maxCpuLoras && held + bytes <= this.limits.maxCpuLoraBytes;
    let [count, held] = [this.registered.size, this.hostBytes];
    const victims: string[] = [];
    for (const [id, r] of this.registered) {
      if (fits(count, held)) break;
      if (r.pinned || this.batch.has(id)) continue;
      victims.push(id);
      count--;
      held -= r.bytes;
    }
    if (!fits(count, held)) return refuse('E_CAPACITY');
    for (const id of victims) this.#drop(id);
    this.registered.set(adapter.id, { adapter, bytes, pinned: false });
    return OK;
  }

  activate(id: unknown): Outcome {
    if (typeof id !== 'string' || !this.registered.has(id)) return refuse('E_NOT_FOUND');
    const plan = this.#plan([id], (other) => !this.isPinned(other) && !this.batch.has(other));
    if (plan === undefined) return refuse('E_CAPACITY');
    this.#apply(plan);
    return OK;
  }

  deactivate(id: unknown): Outcome {
    const refused = this.#removable(id);
    if (refused) return refused;
    const slot = this.slots.indexOf(id as string);
    if (slot >= 0) this.#reset(slot);
    return OK;
  }

  remove(id: unknown): Outcome {
    const refused = this.#removable(id);
    if (refused) return refused;
    this.#drop(id as string);
    return OK;
  }

  pin(id: unknown): Outcome {
    const activated = this.activate(id);
    if (activated.ok) (this.registered.get(id as string) as Registered).pinned = true;
    return activated;
  }

  unpin(id: unknown): Outcome {
    if (typeof id !== 'string' || !this.registered.has(id)) return refuse('E_NOT_FOUND');
    (this.registered.get(id) as Registered).pinned = false;
    return OK;
  }

  /** `ids` and `counts` as the runtime reads them once (undefined: unreadable or not an array). */
  setBatch(ids: readonly unknown[] | undefined, counts: readonly unknown[] | undefined, tooLong: boolean): Outcome {
    const codes = new Set<LoRAErrorCode>();
    if (tooLong) codes.add('E_CAPACITY');
    if (ids === undefined || counts === undefined || ids.length !== counts.length) codes.add('E_SHAPE');
    let total = 0;
    for (const n of counts ?? []) {
      if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) codes.add('E_SHAPE');
      else total += n;
    }
    if (total > this.limits.maxNumTokens) codes.add('E_CAPACITY');
    const needed = new Set<string>();
    for (const id of ids ?? []) {
      if (id === null) continue;
      if (typeof id !== 'string') codes.add('E_SHAPE');
      else if (!this.registered.has(id)) codes.add('E_NOT_FOUND');
      else needed.add(id);
    }
    if (codes.size > 0) return { ok: false, codes };
    const pinnedElsewhere = this.slots.filter((id) => id !== null && !needed.has(id) && this.isPinned(id)).length;
    if (needed.size > this.limits.maxLoras - pinnedElsewhere) return refuse('E_CAPACITY');
    const plan = this.#plan([...needed], (other) => !this.isPinned(other));
    if (plan === undefined) return refuse('E_CAPACITY');
    const tokens: number[] = [];
    const sampler: number[] = [];
    (ids as unknown[]).forEach((id, i) => {
      const slot = id === null ? -1 : (plan.slotOf.get(id as string) as number);
      for (let k = 0; k < (counts as number[])[i]!; k++) tokens.push(slot);
      sampler.push(slot);
    });
    this.batch = needed;
    this.#apply(plan);
    this.meta = { tokens, sampler };
    this.version++;
    return OK;
  }

  /** punica.updateMetadata with indices as read once. */
  updateMetadata(indices: readonly unknown[] | undefined, tooLong: boolean): Outcome {
    if (tooLong) return refuse('E_CAPACITY');
    if (indices === undefined) return refuse('E_INDEX');
    if (!indices.every((v) => typeof v === 'number' && Number.isInteger(v) && v >= -1 && v < this.limits.maxLoras))
      return refuse('E_INDEX');
    this.meta = { tokens: [...(indices as number[])], sampler: [...(indices as number[])] };
    this.version++;
    return OK;
  }

  /** A direct `layer.setLoRA` write (the manager's bookkeeping does not change). */
  setLayerSlot(layer: number, slot: number, content: SlotContent): void {
    (this.content[layer] as SlotContent[])[slot] = content;
  }

  /** What the tests reset between runs: no batch, nothing registered, every slot zero. */
  clear(): void {
    this.registered.clear();
    this.batch.clear();
    this.slots.fill(null);
    for (let l = 0; l < this.content.length; l++) {
      this.content[l] = Array.from({ length: this.limits.maxLoras }, () => (this.layers[l] as ModelLayer).modules.map(() => null));
    }
  }

  #removable(id: unknown): Outcome | undefined {
    if (typeof id !== 'string' || !this.registered.has(id)) return refuse('E_NOT_FOUND');
    if (this.batch.has(id) || this.isPinned(id)) return refuse('E_CONFIG');
    return undefined;
  }

  #plan(ids: readonly string[], canEvict: (id: string) => boolean): Plan | undefined {
    const slots = [...this.slots];
    const slotUse = [...this.slotUse];
    let clock = this.clock;
    const slotOf = new Map<string, number>();
    const writes: Array<[string, number]> = [];
    const requested = new Set(ids);
    for (const id of ids) {
      let slot = slots.indexOf(id);
      if (slot < 0) {
        slot = slots.indexOf(null);
        if (slot < 0) {
          let best = -1;
          slots.forEach((other, s) => {
            if (other === null || requested.has(other) || !canEvict(other)) return;
            if (best < 0 || (slotUse[s] as number) < (slotUse[best] as number)) best = s;
          });
          slot = best;
        }
        if (slot < 0) return undefined;
        slots[slot] = id;
        writes.push([id, slot]);
      }
      slotUse[slot] = ++clock;
      slotOf.set(id, slot);
    }
    return { slots, slotUse, clock, slotOf, writes };
  }

  #apply(plan: Plan): void {
    for (const [id, slot] of plan.writes) {
      const adapter = (this.registered.get(id) as Registered).adapter;
      this.layers.forEach((layer, l) => {
        (this.content[l] as SlotContent[])[slot] = layer.modules.map((name) => {
          const m = adapter.modules.get(name);
          return m ? { a: m.a, b: m.b, rank: m.rank, scale: m.scale } : null;
        });
      });
    }
    this.slots = plan.slots;
    this.slotUse = plan.slotUse;
    this.clock = plan.clock;
    for (const id of plan.slotOf.keys()) {
      const reg = this.registered.get(id) as Registered;
      this.registered.delete(id);
      this.registered.set(id, reg);
    }
  }

  #reset(slot: number): void {
    this.layers.forEach((layer, l) => {
      (this.content[l] as SlotContent[])[slot] = layer.modules.map(() => null);
    });
    this.slots[slot] = null;
  }

  #drop(id: string): void {
    const slot = this.slots.indexOf(id);
    if (slot >= 0) this.#reset(slot);
    this.registered.delete(id);
  }
}
