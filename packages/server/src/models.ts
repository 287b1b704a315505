import { adapterBytes, createAdapter, describeValue, type LoRAAdapter } from '@lora/core';
import type { Engine } from '@lora/llama';
import { ApiError, fromLoRAError } from './http/errors.js';

/** Where a served adapter's weights come from; loaded again when the host cache evicted it. */
export interface AdapterSource {
  /** The adapter, under the runtime id given (the server's own id, not the served name). */
  load(id: string): Promise<LoRAAdapter> | LoRAAdapter;
  /** Shown as `root` in /v1/models: the directory or Hub repository. */
  readonly root?: string;
}

/** An adapter already in memory (the demo adapters, a test's adapters). */
export const memoryAdapter = (adapter: LoRAAdapter, root?: string): AdapterSource => ({
  load: (id) => withId(adapter, id),
  ...(root !== undefined ? { root } : {}),
});

/** vLLM's `ModelCard` (`entrypoints/openai/protocol.py`): adapters have `parent` = the base model. */
export interface ModelCard {
  /** The served name: what a request puts in `model` to run on this model or adapter. */
  readonly id: string;
  /** OpenAI's object type, always "model". */
  readonly object: 'model';
  /** When the server began serving it, in Unix seconds: the registry's creation for the base model, `add` for an adapter. */
  readonly created: number;
  /** Always "lora-kernels" (vLLM says "vllm"). */
  readonly owned_by: string;
  /** Where the weights come from: the base model's checkpoint directory or Hub id (its name if none was given), an adapter's {@link AdapterSource.root} or null. */
  readonly root: string | null;
  /** The base model's served name for an adapter; null for the base model. */
  readonly parent: string | null;
  /** The base model's context length in tokens (the engine's `maxModelLen`, `max_position_embeddings`); null for adapters. */
  readonly max_model_len: number | null;
  /** Always empty: there are no per-model permissions; kept because vLLM's card has the field. */
  readonly permission: readonly unknown[];
}

/** A request's hold on a served model: its adapter stays registered until `release()`. */
export interface Lease {
  /** The served name the request asked for. */
  readonly name: string;
  /** The runtime adapter id to pass to the engine (null: the base model). */
  readonly adapter: string | null;
  /**
   * Ends the hold, once the request's result is in: an adapter no lease holds may be evicted from
   * the host cache, or leave the runtime if its name was unloaded. Later calls do nothing.
   */
  release(): void;
}

interface Entry {
  readonly name: string;
  readonly source: AdapterSource;
  readonly runtimeId: string;
  readonly created: number;
  refs: number;
  unloaded: boolean;
  loading: Promise<void> | undefined;
}

const MAX_NAME = 200;

/** The adapter under another id: core's `createAdapter` over the same module weights (not copied), everything else kept (an activated LoRA's invocation tokens too). */
const withId = (adapter: LoRAAdapter, id: string): LoRAAdapter =>
  adapter.id === id ? adapter : createAdapter(id, adapter.modules.values(), adapter);
const now = () => Math.floor(Date.now() / 1000);

/**
 * The models a server answers to — the base model and its adapters by served name — and their
 * life in the runtime's adapter manager.
 *
 * Runtime ids are the server's own (`name#n`), so a name can be unloaded and loaded again while
 * requests of the old adapter still run. Every request holds a lease on its adapter from before
 * `engine.add` until its result: the host cache (at most `maxCpuLoras` adapters, core's LRU) only
 * ever evicts adapters no request holds, and an evicted adapter is loaded again from its source
 * on its next request — vLLM's `LRUCacheWorkerLoRAManager` behaviour, where requests carry the
 * adapter's path and the worker reloads what it evicted.
 *
 * Unloading follows vLLM `entrypoints/openai/serving_models.py` `unload_lora_adapter`: the name
 * leaves the served list at once (new requests naming it get 404), while requests already
 * accepted — running or waiting — finish with the adapter; it leaves the runtime when the last
 * of them ends.
 */
export class ServedModels {
  /** The base model's served name: requests naming it run without an adapter, and no adapter may take it. */
  readonly baseModel: string;
  readonly #engine: Engine;
  readonly #baseRoot: string | null;
  readonly #created = now();
  readonly #served = new Map<string, Entry>();
  readonly #pending = new Set<string>();
  /** Every entry whose adapter may be in the runtime, by runtime id (unloaded ones until removed). */
  readonly #byRuntimeId = new Map<string, Entry>();
  readonly #retryAfter: string;
  #counter = 0;
  #loads = 0;
  #evictions = 0;

  constructor(options: { engine: Engine; baseModel: string; baseRoot?: string; retryAfterSeconds?: number }) {
    this.#engine = options.engine;
    this.baseModel = options.baseModel;
    this.#baseRoot = options.baseRoot ?? null;
    this.#retryAfter = String(options.retryAfterSeconds ?? 1);
  }

  /** Adapters read from their sources and registered so far, and adapters evicted from the host cache to make room. */
  get counters(): { readonly loads: number; readonly evictions: number } {
    return { loads: this.#loads, evictions: this.#evictions };
  }

  /**
   * Where a served adapter is now: in a device slot ('device'), registered in host memory
   * ('host'), or only at its source ('source', read again on its next request); undefined for a
   * name not served (the base model included).
   */
  tierOf(name: string): 'device' | 'host' | 'source' | undefined {
    const entry = this.#served.get(name);
    if (entry === undefined) return undefined;
    const { adapters } = this.#engine.model.runtime;
    if (adapters.slotOf(entry.runtimeId) >= 0) return 'device';
    return adapters.get(entry.runtimeId) === undefined ? 'source' : 'host';
  }

  /** Served adapter names, in the order they were added. */
  get adapters(): readonly string[] {
    return [...this.#served.keys()];
  }

  /** Whether `name` is served now: the base model, or an adapter added and not removed (not one still being added). */
  has(name: string): boolean {
    return name === this.baseModel || this.#served.has(name);
  }

  /** The served name of a runtime adapter id (metrics, logs). */
  nameOf(runtimeId: string): string | undefined {
    return this.#byRuntimeId.get(runtimeId)?.name;
  }

  /** The cards of GET /v1/models: the base model first, then the adapters in the order they were added. */
  list(): ModelCard[] {
    const card = (id: string, created: number, root: string | null, parent: string | null, maxLen: number | null): ModelCard => ({
      id,
      object: 'model',
      created,
      owned_by: 'lora-kernels',
      root,
      parent,
      max_model_len: maxLen,
      permission: [],
    });
    return [
      card(this.baseModel, this.#created, this.#baseRoot ?? this.baseModel, null, this.#engine.maxModelLen),
      ...[...this.#served.values()].map((e) => card(e.name, e.created, e.source.root ?? null, this.baseModel, null)),
    ];
  }

  /**
   * Serves an adapter under `name`, loading and registering it now so that a bad adapter is
   * refused here and not on its first request (vLLM `load_lora_adapter` calls `add_lora` for the
   * same reason). A name already served is 400, like vLLM.
   */
  async add(name: string, source: AdapterSource): Promise<void> {
    if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME) {
      throw new ApiError(400, `lora_name must be a string of 1 to ${MAX_NAME} characters, got ${describeValue(name)}`, {
        param: 'lora_name',
      });
    }
    if (name === this.baseModel || this.#served.has(name) || this.#pending.has(name)) {
      throw new ApiError(400, `The lora adapter '${name}' has already been loaded.`, { param: 'lora_name', code: 'already_loaded' });
    }
    this.#pending.add(name);
    const entry: Entry = {
      name,
      source,
      runtimeId: `${name}#${++this.#counter}`,
      created: now(),
      refs: 1,
      unloaded: false,
      loading: undefined,
    };
    this.#byRuntimeId.set(entry.runtimeId, entry);
    try {
      await this.#ensureRegistered(entry);
      this.#served.set(name, entry);
    } catch (err) {
      entry.unloaded = true;
      throw err instanceof ApiError ? err : fromLoRAError(err, 'lora_path');
    } finally {
      entry.refs--;
      this.#pending.delete(name);
      this.#sweep();
    }
  }

  /** Stops serving `name` (404 if it is not served); running and waiting requests finish with it. */
  remove(name: string): void {
    const entry = this.#served.get(name);
    if (entry === undefined) {
      throw new ApiError(404, `The lora adapter '${name}' cannot be found.`, { param: 'lora_name', code: 'not_found' });
    }
    this.#served.delete(name);
    entry.unloaded = true;
    this.#sweep();
  }

  /** A hold on `name` for one request, its adapter registered in the runtime (404 for a name not served). */
  async acquire(name: string): Promise<Lease> {
    if (name === this.baseModel) return { name, adapter: null, release: () => {} };
    const entry = this.#served.get(name);
    if (entry === undefined) {
      throw new ApiError(404, `The model \`${name}\` does not exist.`, { param: 'model', code: 'model_not_found' });
    }
    entry.refs++;
    try {
      await this.#ensureRegistered(entry);
      this.#prefetchSlot(entry.runtimeId);
    } catch (err) {
      entry.refs--;
      this.#sweep();
      throw err instanceof ApiError ? err : fromLoRAError(err, 'model');
    }
    let released = false;
    return {
      name,
      adapter: entry.runtimeId,
      release: () => {
        if (released) return;
        released = true;
        entry.refs--;
        this.#sweep();
      },
    };
  }

  async #ensureRegistered(entry: Entry): Promise<void> {
    const { adapters } = this.#engine.model.runtime;
    while (adapters.get(entry.runtimeId) === undefined) {
      entry.loading ??= (async () => {
        try {
          const loaded = withId(await entry.source.load(entry.runtimeId), entry.runtimeId);
          this.#makeRoom(adapterBytes(loaded));
          adapters.register(loaded);
          this.#loads++;
        } finally {
          entry.loading = undefined;
        }
      })();
      await entry.loading;
    }
  }

  /**
   * The last tier of a request's adapter moving up before the request runs (issue #22's prefetch):
   * into a device slot now, between engine steps, when one is free — never evicting another
   * adapter, which may be what the next step needs. The step that admits the request then finds
   * it there (on a GPU the upload is queued while the current batch still runs). Where no slot is
   * free the step's `setBatch` activates it as before, and so reports anything wrong with it.
   */
  #prefetchSlot(runtimeId: string): void {
    const { adapters } = this.#engine.model.runtime;
    if (adapters.slotOf(runtimeId) >= 0 || !adapters.slots.includes(null)) return;
    try {
      adapters.activate(runtimeId);
    } catch {
      // Left to the step (see above).
    }
  }

  /** The engine has nothing waiting or running: no step is planned or in flight. */
  #idle(): boolean {
    const s = this.#engine.stats();
    return s.running === 0 && s.waiting === 0;
  }

  /**
   * The last step's adapters stay in the manager's "current batch" (which it never evicts or
   * removes) until the next step; when the engine is idle there is no next step, so the mapping
   * is cleared here — safe, since no forward pass is in flight.
   */
  #releaseIdleBatch(id: string): boolean {
    const { adapters } = this.#engine.model.runtime;
    if (!adapters.batch.has(id)) return true;
    if (!this.#idle()) return false;
    adapters.setBatch([], []);
    return true;
  }

  /** Frees a place in the host cache for one more adapter, evicting the least recently used one no request holds. */
  /** Evicts adapters no request holds (least recently used first) until one of `incoming` bytes fits both host-cache limits. */
  #makeRoom(incoming: number): void {
    const { adapters, config } = this.#engine.model.runtime;
    if (incoming > config.maxCpuLoraBytes) {
      throw new ApiError(
        400,
        `the adapter's weights take ${incoming} bytes, more than the whole host cache (--max-cpu-lora-bytes ${config.maxCpuLoraBytes})`,
        { code: 'adapter_too_large' },
      );
    }
    while (adapters.registered.length >= config.maxCpuLoras || adapters.hostMemory + incoming > config.maxCpuLoraBytes) {
      const victim = adapters.registered.find((id) => {
        const e = this.#byRuntimeId.get(id);
        return e !== undefined && e.refs === 0 && e.loading === undefined && !adapters.isPinned(id) && this.#releaseIdleBatch(id);
      });
      if (victim === undefined) {
        throw new ApiError(
          429,
          `the host cache (--max-cpu-loras ${config.maxCpuLoras}, --max-cpu-lora-bytes ${config.maxCpuLoraBytes}) is full of adapters in use by requests; try again later`,
          { code: 'adapter_cache_full', headers: { 'retry-after': this.#retryAfter } },
        );
      }
      this.#forget(victim);
      this.#evictions++;
    }
  }

  #forget(runtimeId: string): void {
    const { adapters } = this.#engine.model.runtime;
    if (adapters.get(runtimeId) !== undefined) adapters.remove(runtimeId);
    const entry = this.#byRuntimeId.get(runtimeId);
    if (entry?.unloaded) this.#byRuntimeId.delete(runtimeId);
  }

  /** Removes unloaded adapters that no request holds any more. */
  #sweep(): void {
    for (const [id, entry] of this.#byRuntimeId) {
      if (!entry.unloaded || entry.refs > 0 || entry.loading !== undefined) continue;
      if (this.#releaseIdleBatch(id)) this.#forget(id);
    }
  }
}
