import type { ResolvedLoRAConfig } from '../config.js';
import { describeValue, LoRAError } from '../errors.js';
import type { LoRALayer } from '../layers/layer.js';
import type { LoRAMetadata } from '../metadata.js';
import type { PunicaWrapper } from '../punica.js';
import { checkRankFits, checkStrength, snapshotArray } from '../validate.js';
import { type AdapterModuleWeights, createAdapter, isCheckedAdapter, type LoRAAdapter } from './adapter.js';
import { planSlots, type SlotPlan } from './slot-plan.js';

interface Registered {
  readonly adapter: LoRAAdapter;
  /** {@link adapterBytes}, counted once at registration. */
  readonly bytes: number;
  pinned: boolean;
}

/** One adapter of a request's mix and its weight: `0.7·style + 0.5·domain` (vLLM RFC 51940, LoRAX `adapter_weights`). */
export interface MixTerm {
  /** A registered adapter's id. */
  readonly id: string;
  /** Finite; it multiplies the adapter's LoRA term as a strength does (0: the term is off). */
  readonly weight: number;
}

/** What a request asks for in {@link AdapterManager.setBatch}: an adapter id, null (the base model), or a weighted mix. */
export type RequestAdapter = string | null | readonly MixTerm[];

/** Bytes an adapter's weights take in host memory: A, B and DoRA magnitudes at their true ranks (what `maxCpuLoraBytes` counts). */
export function adapterBytes(adapter: LoRAAdapter): number {
  let bytes = 0;
  for (const m of adapter.modules.values()) bytes += m.a.byteLength + m.b.byteLength + (m.magnitude?.byteLength ?? 0);
  return bytes;
}

/** The first DoRA module of each adapter seen in a mix (adapters are frozen): an engine re-checks its mixes every step. */
const DORA_MODULE = new WeakMap<LoRAAdapter, string | null>();

/** The name of the adapter's first module with a DoRA magnitude vector, or null; scanned once per adapter. */
function doraModuleOf(adapter: LoRAAdapter): string | null {
  let name = DORA_MODULE.get(adapter);
  if (name === undefined) {
    name = null;
    for (const m of adapter.modules.values()) {
      if (m.magnitude !== undefined) {
        name = m.name;
        break;
      }
    }
    DORA_MODULE.set(adapter, name);
  }
  return name;
}

/** A request's adapters as setBatch reads them: (id, weight) pairs in the request's order. */
type Terms = readonly { readonly id: string; readonly weight: number }[];

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
  /** Bytes of every layer's slot stacks, against `maxSlotMemory`. */
  #slotBytes = 0;
  /** Bytes of the registered adapters' weights, against `maxCpuLoraBytes`. */
  #hostBytes = 0;
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

  /** The layers built on this runtime and not yet disposed, in construction order (a copy). */
  get layers(): readonly LoRALayer[] {
    return [...this.#layers];
  }

  /** The device slot holding adapter `id`, or -1 when it is not active (or not registered). */
  slotOf(id: string): number {
    return this.#slots.indexOf(id);
  }

  /** Whether `id` is registered and pinned; false for ids that are not registered. */
  isPinned(id: string): boolean {
    return this.#registered.get(id)?.pinned ?? false;
  }

  /** The registered adapter with this id, as `register` checked it, or undefined; does not count as a use for the LRU order. */
  get(id: string): LoRAAdapter | undefined {
    return this.#registered.get(id)?.adapter;
  }

  /** Bytes the layers' slot stacks take now (host mirrors and device copies). */
  get slotMemory(): number {
    return this.#slotBytes;
  }

  /** Bytes the registered adapters' weights take now ({@link adapterBytes} summed; at most `maxCpuLoraBytes`). */
  get hostMemory(): number {
    return this.#hostBytes;
  }

  /**
   * Called by a layer before it allocates anything: its modules must be free in this runtime and
   * its slot stacks (`bytes`) must fit `maxSlotMemory` with the layers already built.
   */
  checkNewLayer(modules: readonly string[], bytes: number, description: string): void {
    this.#live('addLayer');
    const taken = modules.filter((m) => this.#modules.has(m));
    if (taken.length > 0)
      throw new LoRAError('E_CONFIG', `module(s) ${taken.slice(0, 4).join(', ')} already belong to another layer of this runtime`);
    const budget = this.#config.maxSlotMemory;
    if (this.#slotBytes + bytes > budget) {
      const { maxLoras, maxLoraRank } = this.#config;
      throw new LoRAError(
        'E_CAPACITY',
        `${description} needs ${bytes} bytes of adapter slots (maxLoras ${maxLoras} × maxLoraRank ${maxLoraRank} × (in + out) floats, host mirror and device copy); with the ${this.#slotBytes} bytes of the layers already built that passes maxSlotMemory = ${budget}. Lower maxLoras or maxLoraRank, or raise maxSlotMemory`,
      );
    }
  }

  /** Called by layers on construction. Active adapters are written into the new layer's slots. */
  addLayer(layer: LoRALayer): void {
    const bytes = layer.slotBytes ?? 0;
    this.checkNewLayer(layer.modules, bytes, `layer ${layer.modules[0] ?? ''}`);
    const contents = this.#slots.map((id) =>
      id === null ? layer.modules.map(() => null) : this.#weightsFor(layer, (this.#registered.get(id) as Registered).adapter),
    );
    for (const modules of contents) layer.validateSlot?.(modules);
    for (const [slot, modules] of contents.entries()) layer.setSlot(slot, modules);
    this.#layers.push(layer);
    this.#slotBytes += bytes;
    for (const [slice, m] of layer.modules.entries()) this.#modules.set(m, { layer, slice });
  }

  /** Called by a layer's `dispose()`: forgets the layer and its modules and returns its bytes to `maxSlotMemory`; unknown layers are ignored. */
  removeLayer(layer: LoRALayer): void {
    const i = this.#layers.indexOf(layer);
    if (i < 0) return;
    this.#layers.splice(i, 1);
    this.#slotBytes -= layer.slotBytes ?? 0;
    for (const m of layer.modules) this.#modules.delete(m);
  }

  /**
   * Adds an adapter to the host cache, evicting least recently used unpinned adapters (not in the
   * current batch) while it would hold more than `maxCpuLoras` adapters or `maxCpuLoraBytes`
   * bytes. The adapter is checked whole first (every module served by a layer with its sizes, rank
   * within maxLoraRank, finite scale and weights), so a bad one never reaches a slot; when room
   * cannot be made, nothing is evicted (E_CAPACITY).
   */
  register(adapter: LoRAAdapter): void {
    this.#live('register');
    const checked = this.#checkAdapter(adapter);
    if (this.#registered.has(checked.id))
      throw new LoRAError('E_CONFIG', `adapter ${describeValue(checked.id)} is already registered; remove() it first to replace it`);
    const bytes = adapterBytes(checked);
    const { maxCpuLoras, maxCpuLoraBytes } = this.#config;
    if (bytes > maxCpuLoraBytes) {
      throw new LoRAError(
        'E_CAPACITY',
        `cannot register ${describeValue(checked.id)}: its weights take ${bytes} bytes, more than the whole host cache (maxCpuLoraBytes = ${maxCpuLoraBytes})`,
      );
    }
    // Plan the evictions first: all of them, or none.
    const victims: string[] = [];
    let [count, held] = [this.#registered.size, this.#hostBytes];
    for (const [id, r] of this.#registered) {
      if (count < maxCpuLoras && held + bytes <= maxCpuLoraBytes) break;
      if (r.pinned || this.#batch.has(id)) continue;
      victims.push(id);
      count--;
      held -= r.bytes;
    }
    if (count >= maxCpuLoras || held + bytes > maxCpuLoraBytes) {
      throw new LoRAError(
        'E_CAPACITY',
        `cannot register ${describeValue(checked.id)} (${bytes} bytes): the host cache (maxCpuLoras = ${maxCpuLoras} adapters, maxCpuLoraBytes = ${maxCpuLoraBytes} bytes) holds ${this.#registered.size} adapters and ${this.#hostBytes} bytes, and not enough of them are unpinned and outside the current batch to make room`,
      );
    }
    for (const id of victims) this.#drop(id);
    this.#registered.set(checked.id, { adapter: checked, bytes, pinned: false });
    this.#hostBytes += bytes;
  }

  /** Puts a registered adapter in a device slot (evicting the LRU unpinned slot not in use) → slot. */
  activate(id: string): number {
    this.#live('activate');
    this.#get(id);
    const plan = planSlots(this.#slotState(), [id], (other) => !this.isPinned(other) && !this.#batch.has(other));
    this.#commit(plan);
    return plan.slotOf.get(id) as number;
  }

  /** Frees the adapter's slot (zeroed). It stays registered. Pinned adapters and the current batch's stay. */
  deactivate(id: string): void {
    this.#live('deactivate');
    this.#get(id);
    this.#notInBatch(id, 'deactivate');
    this.#notPinned(id, 'deactivate');
    const slot = this.#slots.indexOf(id);
    if (slot < 0) return;
    for (const layer of this.#layers) layer.resetLoRA(slot);
    this.#slots[slot] = null;
  }

  /** Deactivates and forgets an adapter. Pinned adapters and the current batch's stay. */
  remove(id: string): void {
    this.#live('remove');
    this.#get(id);
    this.#notInBatch(id, 'remove');
    this.#notPinned(id, 'remove');
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

  /**
   * Lets a pinned adapter be evicted again (from its slot and from the host cache); it stays
   * registered and active until then.
   * @throws {@link LoRAError} `E_NOT_FOUND` when `id` is not registered, `E_DISPOSED` after `dispose()`.
   */
  unpin(id: string): void {
    this.#live('unpin');
    this.#get(id).pinned = false;
  }

  /**
   * Makes one batch ready: activates every adapter it needs (evicting only unpinned adapters it
   * does not use), maps each request's tokens to its slot (-1 for null) and calls
   * `updateMetadata`; the sampler mapping has one row per request. All checks run first: a batch
   * that cannot be served (unknown adapter, more distinct adapters than free or evictable slots,
   * too many tokens) throws and changes nothing. `requestStrengths` (optional, one finite number
   * per request, default 1) scales each request's LoRA term: vLLM issue 52733's per-request
   * `lora_scale`, served in the same batch; 0 gives the base model's output bit for bit.
   *
   * A request may name a **mix** instead of one adapter: `[{ id: 'style', weight: 0.7 }, { id:
   * 'domain', weight: 0.5 }]` gives `y = W·x + 0.7·ΔW_style·x + 0.5·ΔW_domain·x` (its strength
   * multiplies every weight), in the same batch as everyone else: its k-th adapter goes into mix lane
   * k (`LoRAMetadata.mixLanes`), so a batch costs one extra pass per lane, and only where a mix has
   * that many adapters. A mix needs its adapters in slots together (E_CAPACITY beyond `maxLoras`);
   * its ids must be distinct, and DoRA adapters cannot be mixed (E_UNSUPPORTED: their magnitude
   * rescales the whole layer output, which has no additive meaning).
   *
   * `firstAdapterTokens` (optional, one per request, default 0) is where in the request's tokens
   * of this batch its adapter starts: earlier tokens get the base model (slot -1), and the sampled
   * row (the last token) gets the adapter only if it is at or past that point. Engines use it for
   * Activated LoRA (`LoRAAdapter.invocationTokens`); a value ≥ the request's token count means none.
   */
  setBatch(
    requestAdapterIds: readonly RequestAdapter[],
    tokensPerRequest: readonly number[],
    requestStrengths?: readonly number[],
    firstAdapterTokens?: readonly number[],
  ): LoRAMetadata {
    this.#live('setBatch');
    const { maxNumTokens, maxLoras } = this.#config;
    // Read the caller's arrays once: every check below and the mapping use these copies.
    const read = (value: unknown, name: string, expected: string) =>
      snapshotArray(value, name, { code: 'E_SHAPE', maxLength: maxNumTokens, expected, limitName: 'maxNumTokens' });
    const ids = read(requestAdapterIds, 'requestAdapterIds', 'an array with one adapter id (or null) per request');
    const counts = read(tokensPerRequest, 'tokensPerRequest', 'an array with one token count per request');
    if (ids.length !== counts.length) {
      throw new LoRAError(
        'E_SHAPE',
        `setBatch expects one adapter id (or null) and one token count per request, got ${ids.length} ids and ${counts.length} counts`,
      );
    }
    const strengths =
      requestStrengths === undefined ? undefined : read(requestStrengths, 'requestStrengths', 'an array with one strength per request');
    if (strengths !== undefined && strengths.length !== ids.length) {
      throw new LoRAError(
        'E_SHAPE',
        `setBatch expects one strength per request, got ${strengths.length} strengths for ${ids.length} requests`,
      );
    }
    strengths?.forEach((f, i) => {
      checkStrength(f, `requestStrengths[${i}]`);
    });
    const firsts =
      firstAdapterTokens === undefined
        ? undefined
        : read(firstAdapterTokens, 'firstAdapterTokens', 'an array with one token index per request');
    if (firsts !== undefined && firsts.length !== ids.length) {
      throw new LoRAError(
        'E_SHAPE',
        `setBatch expects one first adapter token per request, got ${firsts.length} for ${ids.length} requests`,
      );
    }
    firsts?.forEach((k, i) => {
      if (typeof k !== 'number' || !Number.isSafeInteger(k) || k < 0)
        throw new LoRAError('E_SHAPE', `firstAdapterTokens[${i}] must be an integer ≥ 0, got ${describeValue(k)}`);
    });
    let total = 0;
    counts.forEach((n, i) => {
      if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1)
        throw new LoRAError('E_SHAPE', `tokensPerRequest[${i}] must be a positive integer, got ${describeValue(n)}`);
      total += n; // a float sum: a count past the limit keeps it past the limit
    });
    if (total > maxNumTokens) {
      throw new LoRAError('E_CAPACITY', `the batch has ${total} tokens; this runtime takes at most maxNumTokens = ${maxNumTokens}`);
    }
    const needed = new Set<string>();
    const terms: Terms[] = ids.map((id, i) => {
      if (id === null) return [];
      const request = typeof id === 'string' ? [{ id, weight: 1 }] : this.#readMix(id, `requestAdapterIds[${i}]`);
      for (const term of request) {
        this.#get(term.id);
        needed.add(term.id);
      }
      return request;
    });
    const pinnedElsewhere = this.#slots.filter((id) => id !== null && !needed.has(id) && this.isPinned(id)).length;
    if (needed.size > maxLoras - pinnedElsewhere) {
      throw new LoRAError(
        'E_CAPACITY',
        `the batch needs ${needed.size} distinct adapters but only ${maxLoras - pinnedElsewhere} of maxLoras = ${maxLoras} slots are not pinned by other adapters`,
      );
    }
    // Plan and check every slot write before changing anything (all-or-nothing).
    const plan = planSlots(this.#slotState(), [...needed], (other) => !this.isPinned(other));
    const writes = this.#checkWrites(plan);
    // Lane 0 is the main mapping; lane k ≥ 1 holds the k-th adapter of each mix.
    const lanes = Math.max(1, ...terms.map((r) => r.length));
    const weighted = strengths !== undefined || terms.some((r) => r.some((term) => term.weight !== 1));
    const mappings = Array.from({ length: lanes }, () => ({
      tokenLoraIndices: new Int32Array(total).fill(-1),
      samplerLoraIndices: new Int32Array(ids.length).fill(-1),
      tokenLoraScales: weighted ? new Float32Array(total).fill(1) : undefined,
      samplerLoraScales: weighted ? new Float32Array(ids.length).fill(1) : undefined,
    }));
    let t = 0;
    terms.forEach((request, i) => {
      const end = t + (counts[i] as number);
      const strength = strengths === undefined ? 1 : (strengths[i] as number);
      const from = Math.min(t + ((firsts?.[i] as number | undefined) ?? 0), end);
      request.forEach((term, k) => {
        const lane = mappings[k] as (typeof mappings)[number];
        const slot = plan.slotOf.get(term.id) as number;
        lane.tokenLoraIndices.fill(slot, from, end);
        if (from < end) lane.samplerLoraIndices[i] = slot;
        lane.tokenLoraScales?.fill(term.weight * strength, t, end);
        if (lane.samplerLoraScales) lane.samplerLoraScales[i] = term.weight * strength;
      });
      t = end;
    });
    const [main, ...mixLanes] = mappings as [(typeof mappings)[number], ...typeof mappings];
    this.#punica.updateMetadata(mixLanes.length === 0 ? main : { ...main, mixLanes });
    this.#batch = needed;
    this.#apply(plan, writes);
    return this.#punica.meta;
  }

  /** Disposes every layer (their slot stacks) and forgets every adapter; later calls throw E_DISPOSED. Idempotent; the runtime's `dispose()` calls it. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const layer of [...this.#layers]) layer.dispose();
    this.#registered.clear();
    this.#hostBytes = 0;
    this.#batch.clear();
  }

  /**
   * Checks a mix as {@link AdapterManager.setBatch} would and returns a frozen copy: 1 to
   * `maxLoras` distinct registered adapters, finite weights, none of them DoRA. An engine calls it
   * when a request arrives, so a bad mix is refused before it waits in a queue.
   * @throws {@link LoRAError} E_SHAPE, E_CONFIG, E_NOT_FOUND, E_UNSUPPORTED or E_CAPACITY naming the entry (`where`).
   */
  checkMix(mix: readonly MixTerm[], where = 'mix'): readonly MixTerm[] {
    this.#live('checkMix');
    return Object.freeze(this.#readMix(mix, where).map((t) => Object.freeze({ ...t })));
  }

  /** A mix as the caller gave it, copied once and checked: 1 to maxLoras distinct adapters, finite weights, no DoRA. */
  #readMix(value: unknown, where: string): Terms {
    const maxLoras = this.#config.maxLoras;
    if (!Array.isArray(value))
      throw new LoRAError('E_SHAPE', `${where} must be an adapter id, null or a mix [{ id, weight }, …], got ${describeValue(value)}`);
    const given = snapshotArray(value, where, { code: 'E_SHAPE', maxLength: maxLoras + 1, expected: 'a mix [{ id, weight }, …]' });
    if (given.length === 0) throw new LoRAError('E_SHAPE', `${where} is an empty mix; give at least one { id, weight } or null`);
    if (given.length > maxLoras) {
      throw new LoRAError(
        'E_CAPACITY',
        `${where} mixes more than maxLoras = ${maxLoras} adapters; a mix needs all of them in slots at once`,
      );
    }
    const seen = new Set<string>();
    return given.map((term, k) => {
      let id: unknown;
      let weight: unknown;
      try {
        ({ id, weight } = term as MixTerm);
      } catch (err) {
        throw new LoRAError('E_SHAPE', `${where}[${k}] could not be read: ${describeValue((err as Error)?.message)}`);
      }
      if (typeof id !== 'string') throw new LoRAError('E_SHAPE', `${where}[${k}].id must be an adapter id, got ${describeValue(id)}`);
      checkStrength(weight, `${where}[${k}].weight`);
      if (seen.has(id))
        throw new LoRAError('E_CONFIG', `${where} names adapter ${describeValue(id)} twice; give it once with the summed weight`);
      seen.add(id);
      const adapter = this.#get(id).adapter;
      if (adapter.invocationTokens !== undefined) {
        throw new LoRAError(
          'E_UNSUPPORTED',
          `${where}: adapter ${describeValue(id)} is an activated LoRA (it starts at its invocation tokens), so it cannot be mixed with other adapters`,
        );
      }
      const dora = doraModuleOf(adapter);
      if (dora !== null) {
        throw new LoRAError(
          'E_UNSUPPORTED',
          `${where}: adapter ${describeValue(id)} is DoRA (module ${dora}); DoRA rescales the whole layer output, so it cannot be mixed with other adapters`,
        );
      }
      return { id, weight: weight as number };
    });
  }

  /** The adapter's weights for each slice of a layer (null where it does not target the module). */
  #weightsFor(layer: LoRALayer, adapter: LoRAAdapter): (AdapterModuleWeights | null)[] {
    return layer.modules.map((m) => adapter.modules.get(m) ?? null);
  }

  /**
   * The adapter as this manager will keep it: built by createAdapter (checked once there) or
   * checked now, then every module must exist in the model with the adapter's sizes and fit
   * maxLoraRank.
   */
  #checkAdapter(adapter: LoRAAdapter): LoRAAdapter {
    let checked: LoRAAdapter;
    if (isCheckedAdapter(adapter)) checked = adapter;
    else {
      if (adapter === null || typeof adapter !== 'object') {
        throw new LoRAError(
          'E_CONFIG',
          `register expects a LoRAAdapter { id, rank, modules } (see loadPeftAdapter), got ${describeValue(adapter)}`,
        );
      }
      let id: unknown;
      let modules: unknown;
      let invocationTokens: unknown;
      try {
        id = adapter.id;
        modules = adapter.modules;
        invocationTokens = adapter.invocationTokens;
      } catch (err) {
        throw new LoRAError('E_CONFIG', `register: the adapter could not be read: ${describeValue((err as Error)?.message)}`);
      }
      if (typeof id !== 'string' || !(modules instanceof Map)) {
        throw new LoRAError(
          'E_CONFIG',
          `register expects a LoRAAdapter { id, rank, modules } (see loadPeftAdapter), got ${describeValue(adapter)}`,
        );
      }
      // An activated LoRA stays one: its invocation tokens are checked with the modules.
      checked = createAdapter(
        id,
        (modules as Map<string, AdapterModuleWeights>).values(),
        invocationTokens === undefined ? undefined : { invocationTokens },
      );
    }
    const label = describeValue(checked.id);
    for (const [name, m] of checked.modules) {
      const target = this.#modules.get(name);
      if (target === undefined) {
        const known = [...this.#modules.keys()];
        throw new LoRAError(
          'E_SHAPE',
          `adapter ${label} targets module ${name}, which no layer of this model serves (${known.length} modules: ${known.slice(0, 4).join(', ')}${known.length > 4 ? ', ...' : ''})`,
        );
      }
      checkRankFits(m.rank, this.#config.maxLoraRank, `adapter ${label} on ${name}`);
      const shape = target.layer.sliceShapes[target.slice] as { inFeatures: number; outFeatures: number };
      if (m.kind !== target.layer.kind || m.inFeatures !== shape.inFeatures || m.outFeatures !== shape.outFeatures) {
        throw new LoRAError(
          'E_SHAPE',
          `adapter ${label} has ${m.kind} weights ${m.inFeatures} → ${m.outFeatures} for ${name}; the model's ${target.layer.kind} layer there is ${shape.inFeatures} → ${shape.outFeatures}`,
        );
      }
    }
    return checked;
  }

  #slotState() {
    return { slots: this.#slots, slotUse: this.#slotUse, clock: this.#clock };
  }

  /** The layer contents of every planned write, each checked by its layer before any is made. */
  #checkWrites(plan: SlotPlan): { slot: number; contents: (AdapterModuleWeights | null)[][] }[] {
    const writes = plan.writes.map(({ id, slot }) => ({
      slot,
      contents: this.#layers.map((layer) => this.#weightsFor(layer, (this.#registered.get(id) as Registered).adapter)),
    }));
    for (const w of writes) {
      for (const [i, layer] of this.#layers.entries()) layer.validateSlot?.(w.contents[i] as (AdapterModuleWeights | null)[]);
    }
    return writes;
  }

  /** Applies a checked plan: slot writes, slot LRU clock, host-cache LRU order. */
  #apply(plan: SlotPlan, writes: { slot: number; contents: (AdapterModuleWeights | null)[][] }[]): void {
    for (const w of writes) {
      for (const [i, layer] of this.#layers.entries()) layer.setSlot(w.slot, w.contents[i] as (AdapterModuleWeights | null)[]);
    }
    plan.slots.forEach((id, slot) => {
      this.#slots[slot] = id;
      this.#slotUse[slot] = plan.slotUse[slot] as number;
    });
    this.#clock = plan.clock;
    for (const id of plan.slotOf.keys()) this.#touch(id);
  }

  #commit(plan: SlotPlan): void {
    this.#apply(plan, this.#checkWrites(plan));
  }

  #drop(id: string): void {
    const slot = this.#slots.indexOf(id);
    if (slot >= 0) {
      for (const layer of this.#layers) layer.resetLoRA(slot);
      this.#slots[slot] = null;
    }
    this.#hostBytes -= this.#registered.get(id)?.bytes ?? 0;
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
        `adapter ${describeValue(id)} is not registered (registered: ${
          this.registered
            .slice(0, 8)
            .map((r) => describeValue(r))
            .join(', ') || 'none'
        }${this.#registered.size > 8 ? `, ... ${this.#registered.size} in all` : ''})`,
      );
    }
    return reg;
  }

  #notInBatch(id: string, what: string): void {
    if (this.#batch.has(id)) {
      throw new LoRAError(
        'E_CONFIG',
        `cannot ${what} ${describeValue(id)}: the current batch uses it; call setBatch() for the next batch (or setBatch([], [])) first`,
      );
    }
  }

  #notPinned(id: string, what: string): void {
    if (this.isPinned(id)) throw new LoRAError('E_CONFIG', `cannot ${what} ${describeValue(id)}: it is pinned; unpin() it first`);
  }

  #live(call: string): void {
    if (this.#disposed) throw new LoRAError('E_DISPOSED', `AdapterManager.${call}: the LoRA runtime was disposed`);
  }
}
