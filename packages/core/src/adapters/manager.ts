import type { ResolvedLoRAConfig } from '../config.js';
import { describeValue, LoRAError } from '../errors.js';
import type { LoRALayer } from '../layers/layer.js';
import type { LoRAMetadata } from '../metadata.js';
import type { PunicaWrapper } from '../punica.js';
import type { AdapterModuleWeights, LoRAAdapter } from './adapter.js';

interface Registered {
  readonly adapter: LoRAAdapter;
  pinned: boolean;
}

/**
 * vLLM's LRU adapter manager: a host cache of registered adapters (at most maxCpuLoras, least
 * recently used unpinned one evicted) and maxLoras device slots (least recently used unpinned slot
 * not used by the current batch evicted). Activation copies an adapter into every layer's slot,
 * scaling folded into B, rank zero-padded, zeros for modules it does not target. Operations that
 * cannot be done throw before they change anything.
 */
export class AdapterManager {
  readonly #punica: PunicaWrapper;
  readonly #config: ResolvedLoRAConfig;
  readonly #layers: LoRALayer[] = [];
  readonly #modules = new Map<string, { layer: LoRALayer; slice: number }>();
  /** Host cache; Map order is LRU order (oldest first). */
  readonly #registered = new Map<string, Registered>();
  readonly #slots: (string | null)[];
  readonly #slotUse: number[];
  #clock = 0;
  #batch = new Set<string>();
  #disposed = false;

  constructor(punica: PunicaWrapper, config: ResolvedLoRAConfig) {
    this.#punica = punica;
    this.#config = config;
    this.#slots = new Array(config.maxLoras).fill(null);
    this.#slotUse = new Array(config.maxLoras).fill(0);
  }

  /** Adapter id per device slot (null = free). */
  get slots(): readonly (string | null)[] {
    return Object.freeze([...this.#slots]);
  }

  /** Registered (host-cached) adapter ids, least recently used first. */
  get registered(): readonly string[] {
    return [...this.#registered.keys()];
  }

  /** Adapters of the current batch (set by setBatch). */
  get batch(): ReadonlySet<string> {
    return new Set(this.#batch);
  }

  get layers(): readonly LoRALayer[] {
    return [...this.#layers];
  }

  slotOf(id: string): number {
    return this.#slots.indexOf(id);
  }

  isPinned(id: string): boolean {
    return this.#registered.get(id)?.pinned ?? false;
  }

  get(id: string): LoRAAdapter | undefined {
    return this.#registered.get(id)?.adapter;
  }

  /** Called by layers on construction. Active adapters are written into the new layer's slots. */
  addLayer(layer: LoRALayer): void {
    this.#live('addLayer');
    const taken = layer.modules.filter((m) => this.#modules.has(m));
    if (taken.length > 0) throw new LoRAError('E_CONFIG', `module(s) ${taken.join(', ')} already belong to another layer of this runtime`);
    for (const [slot, id] of this.#slots.entries()) {
      layer.setSlot(
        slot,
        id === null ? layer.modules.map(() => null) : this.#weightsFor(layer, (this.#registered.get(id) as Registered).adapter),
      );
    }
    this.#layers.push(layer);
    for (const [slice, m] of layer.modules.entries()) this.#modules.set(m, { layer, slice });
  }

  removeLayer(layer: LoRALayer): void {
    const i = this.#layers.indexOf(layer);
    if (i < 0) return;
    this.#layers.splice(i, 1);
    for (const m of layer.modules) this.#modules.delete(m);
  }

  /** Adds an adapter to the host cache, evicting the least recently used unpinned one if full. */
  register(adapter: LoRAAdapter): void {
    this.#live('register');
    this.#checkAdapter(adapter);
    if (this.#registered.has(adapter.id))
      throw new LoRAError('E_CONFIG', `adapter "${adapter.id}" is already registered; remove() it first to replace it`);
    if (this.#registered.size >= this.#config.maxCpuLoras) {
      const victim = [...this.#registered].find(([id, r]) => !r.pinned && !this.#batch.has(id))?.[0];
      if (victim === undefined) {
        throw new LoRAError(
          'E_CAPACITY',
          `cannot register "${adapter.id}": the host cache holds maxCpuLoras = ${this.#config.maxCpuLoras} adapters, all pinned or used by the current batch`,
        );
      }
      this.#drop(victim);
    }
    this.#registered.set(adapter.id, { adapter, pinned: false });
  }

  /** Puts a registered adapter in a device slot (evicting the LRU unpinned slot not in use) → slot. */
  activate(id: string): number {
    this.#live('activate');
    const reg = this.#get(id);
    const current = this.#slots.indexOf(id);
    if (current >= 0) {
      this.#touch(id);
      this.#slotUse[current] = ++this.#clock;
      return current;
    }
    let slot = this.#slots.indexOf(null);
    if (slot < 0) {
      slot = this.#evictableSlot();
      if (slot < 0) {
        throw new LoRAError(
          'E_CAPACITY',
          `cannot activate "${id}": all maxLoras = ${this.#config.maxLoras} slots hold pinned adapters or adapters of the current batch (${this.#slots.join(', ')})`,
        );
      }
    }
    for (const layer of this.#layers) layer.setSlot(slot, this.#weightsFor(layer, reg.adapter));
    this.#touch(id);
    this.#slots[slot] = id;
    this.#slotUse[slot] = ++this.#clock;
    return slot;
  }

  /** Frees the adapter's slot (zeroed). It stays registered. */
  deactivate(id: string): void {
    this.#live('deactivate');
    this.#get(id);
    this.#notInBatch(id, 'deactivate');
    const slot = this.#slots.indexOf(id);
    if (slot < 0) return;
    for (const layer of this.#layers) layer.resetLoRA(slot);
    this.#slots[slot] = null;
  }

  /** Deactivates and forgets an adapter. */
  remove(id: string): void {
    this.#live('remove');
    this.#get(id);
    this.#notInBatch(id, 'remove');
    this.#drop(id);
  }

  /** Keeps an adapter in the host cache and in a device slot until unpinned (activating it now). */
  pin(id: string): number {
    this.#live('pin');
    const reg = this.#get(id);
    const slot = this.activate(id);
    reg.pinned = true;
    return slot;
  }

  unpin(id: string): void {
    this.#live('unpin');
    this.#get(id).pinned = false;
  }

  /**
   * Makes one batch ready: activates every adapter it needs (evicting only unpinned adapters it
   * does not use), maps each request's tokens to its slot (-1 for null) and calls
   * `updateMetadata`; the sampler mapping has one row per request. All checks run first: a batch
   * that cannot be served (unknown adapter, more distinct adapters than free or evictable slots,
   * too many tokens) throws and changes nothing.
   */
  setBatch(requestAdapterIds: readonly (string | null)[], tokensPerRequest: readonly number[]): LoRAMetadata {
    this.#live('setBatch');
    if (!Array.isArray(requestAdapterIds) || !Array.isArray(tokensPerRequest) || requestAdapterIds.length !== tokensPerRequest.length) {
      throw new LoRAError(
        'E_SHAPE',
        `setBatch expects one adapter id (or null) and one token count per request, got ${describeValue(requestAdapterIds)} and ${describeValue(tokensPerRequest)}`,
      );
    }
    let total = 0;
    tokensPerRequest.forEach((n, i) => {
      if (!Number.isSafeInteger(n) || n < 1)
        throw new LoRAError('E_SHAPE', `tokensPerRequest[${i}] must be a positive integer, got ${describeValue(n)}`);
      total += n;
    });
    if (total > this.#config.maxNumTokens) {
      throw new LoRAError(
        'E_CAPACITY',
        `the batch has ${total} tokens; this runtime takes at most maxNumTokens = ${this.#config.maxNumTokens}`,
      );
    }
    const needed = new Set<string>();
    requestAdapterIds.forEach((id, i) => {
      if (id === null) return;
      if (typeof id !== 'string')
        throw new LoRAError('E_SHAPE', `requestAdapterIds[${i}] must be an adapter id or null, got ${describeValue(id)}`);
      this.#get(id);
      needed.add(id);
    });
    const pinnedElsewhere = this.#slots.filter((id) => id !== null && !needed.has(id) && this.isPinned(id)).length;
    if (needed.size > this.#config.maxLoras - pinnedElsewhere) {
      throw new LoRAError(
        'E_CAPACITY',
        `the batch needs ${needed.size} distinct adapters but only ${this.#config.maxLoras - pinnedElsewhere} of maxLoras = ${this.#config.maxLoras} slots are not pinned by other adapters`,
      );
    }
    this.#batch = needed;
    const slotOf = new Map<string, number>();
    for (const id of needed) slotOf.set(id, this.activate(id));
    const tokenLoraIndices = new Int32Array(total);
    const samplerLoraIndices = new Int32Array(requestAdapterIds.length);
    let t = 0;
    requestAdapterIds.forEach((id, i) => {
      const slot = id === null ? -1 : (slotOf.get(id) as number);
      tokenLoraIndices.fill(slot, t, t + (tokensPerRequest[i] as number));
      samplerLoraIndices[i] = slot;
      t += tokensPerRequest[i] as number;
    });
    this.#punica.updateMetadata({ tokenLoraIndices, samplerLoraIndices });
    return this.#punica.meta;
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const layer of [...this.#layers]) layer.dispose();
    this.#registered.clear();
    this.#batch.clear();
  }

  /** The adapter's weights for each slice of a layer (null where it does not target the module). */
  #weightsFor(layer: LoRALayer, adapter: LoRAAdapter): (AdapterModuleWeights | null)[] {
    return layer.modules.map((m) => adapter.modules.get(m) ?? null);
  }

  /** Every module must exist in the model with the adapter's sizes, and fit maxLoraRank. */
  #checkAdapter(adapter: LoRAAdapter): void {
    if (adapter === null || typeof adapter !== 'object' || typeof adapter.id !== 'string' || !(adapter.modules instanceof Map)) {
      throw new LoRAError(
        'E_CONFIG',
        `register expects a LoRAAdapter { id, rank, modules } (see loadPeftAdapter), got ${describeValue(adapter)}`,
      );
    }
    for (const [name, m] of adapter.modules) {
      const target = this.#modules.get(name);
      if (target === undefined) {
        const known = [...this.#modules.keys()];
        throw new LoRAError(
          'E_SHAPE',
          `adapter "${adapter.id}" targets module ${name}, which no layer of this model serves (${known.length} modules: ${known.slice(0, 4).join(', ')}${known.length > 4 ? ', ...' : ''})`,
        );
      }
      if (m.rank > this.#config.maxLoraRank) {
        throw new LoRAError(
          'E_RANK',
          `adapter "${adapter.id}" has rank ${m.rank} on ${name}; this runtime takes at most maxLoraRank = ${this.#config.maxLoraRank}`,
        );
      }
      const shape = target.layer.sliceShapes[target.slice] as { inFeatures: number; outFeatures: number };
      if (m.kind !== target.layer.kind || m.inFeatures !== shape.inFeatures || m.outFeatures !== shape.outFeatures) {
        throw new LoRAError(
          'E_SHAPE',
          `adapter "${adapter.id}" has ${m.kind} weights ${m.inFeatures} → ${m.outFeatures} for ${name}; the model's ${target.layer.kind} layer there is ${shape.inFeatures} → ${shape.outFeatures}`,
        );
      }
    }
  }

  #evictableSlot(): number {
    let best = -1;
    this.#slots.forEach((id, slot) => {
      if (id === null || this.isPinned(id) || this.#batch.has(id)) return;
      if (best < 0 || (this.#slotUse[slot] as number) < (this.#slotUse[best] as number)) best = slot;
    });
    // No reset here: the caller writes the new adapter over every layer's slot right away.
    if (best >= 0) this.#slots[best] = null;
    return best;
  }

  #drop(id: string): void {
    const slot = this.#slots.indexOf(id);
    if (slot >= 0) {
      for (const layer of this.#layers) layer.resetLoRA(slot);
      this.#slots[slot] = null;
    }
    this.#registered.delete(id);
  }

  #touch(id: string): void {
    const reg = this.#registered.get(id) as Registered;
    this.#registered.delete(id);
    this.#registered.set(id, reg);
  }

  #get(id: string): Registered {
    const reg = typeof id === 'string' ? this.#registered.get(id) : undefined;
    if (reg === undefined) {
      throw new LoRAError(
        'E_NOT_FOUND',
        `adapter ${describeValue(id)} is not registered (registered: ${this.registered.map((r) => `"${r}"`).join(', ') || 'none'})`,
      );
    }
    return reg;
  }

  #notInBatch(id: string, what: string): void {
    if (this.#batch.has(id)) {
      throw new LoRAError(
        'E_CONFIG',
        `cannot ${what} "${id}": the current batch uses it; call setBatch() for the next batch (or setBatch([], [])) first`,
      );
    }
  }

  #live(call: string): void {
    if (this.#disposed) throw new LoRAError('E_DISPOSED', `AdapterManager.${call}: the LoRA runtime was disposed`);
  }
}
