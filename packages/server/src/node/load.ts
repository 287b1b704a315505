import '@tensorflow/tfjs-backend-cpu';
import '@lora/backend-cpu';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLoRA, isLoRAError, type LoRAAdapter, LoRAError, type LoRARuntime } from '@lora/core';
import { type CausalLM, Engine, type FileSource, loadModel, loadTokenizer, locateSource, type Tokenizer } from '@lora/llama';
import { DEMO_PRESETS, demoAdapters, loadDemoModel } from '@lora/llama/demo';
import * as tf from '@tensorflow/tfjs-core';
import { createApp, type LoraApp } from '../app.js';
import { type AdapterSource, memoryAdapter, ServedModels } from '../models.js';
import { type AdapterLoader, createAdapterLoader } from './adapter-loader.js';
import { loraRootResolver } from './lora-root.js';
import { loadPathAdapter } from './path-adapter.js';
import { promMetrics } from './prom-metrics.js';

/** An adapter to serve from the start: `name=path`, the path a PEFT directory or a Hub repository id. */
export interface AdapterArg {
  /** The served name: what requests put in `model` to use the adapter. */
  readonly name: string;
  /** A PEFT adapter directory or Hub repository id (found through @lora/llama's `locateSource`); shown as the adapter's `root` in /v1/models. */
  readonly path: string;
}

/** Everything `lora-serve` takes besides host and port (the flags' meanings are in the README). */
export interface ServingOptions {
  /** A checkpoint directory or a Hub repository id; without it the embedded demo model (`preset`) and its adapters. */
  readonly model?: string;
  /** The embedded model's size when `model` is not given (tiny, default, small; default "default"). */
  readonly preset?: string;
  /** The base model's name in requests (vLLM `--served-model-name`; default the --model value, or `demo-<preset>`). */
  readonly servedModelName?: string;
  /** Adapters to serve from the start (`--adapters`); with the embedded demo model and none given, its four demo adapters. */
  readonly adapters?: readonly AdapterArg[];
  /**
   * The LoRA backend by name, for core's `createLoRA` (`--backend`; default "cpu"): a first-party
   * name is imported on demand (`@lora/backend-<name>`), any other must be registered first.
   */
  readonly backend?: string;
  /** Device slots: the most distinct adapters one engine step runs (vLLM `--max-loras`; default 4). */
  readonly maxLoras?: number;
  /** Default: the largest rank of the adapters served at start, at least 16 (vLLM's default). */
  readonly maxLoraRank?: number;
  /** Default: 2 × maxLoras, or more if more adapters are served at start. */
  readonly maxCpuLoras?: number;
  /** Bytes of adapter weights registered in host memory at once (`--max-cpu-lora-bytes`; default: no limit but maxCpuLoras). */
  readonly maxCpuLoraBytes?: number;
  /**
   * Bytes the runtime's adapter slot stacks may take, every LoRA layer's `maxLoras × maxLoraRank`
   * slots with host mirror and device copy (`--max-slot-memory`; core's `maxSlotMemory`, default
   * 2 GiB). The embedding's and LM head's slots grow with the vocabulary: a large vocabulary at a
   * high `maxLoras × maxLoraRank` needs more.
   */
  readonly maxSlotMemory?: number;
  /** Requests running at once (vLLM `--max-num-seqs`; default the engine's, 16). */
  readonly maxNumSeqs?: number;
  /** Tokens per engine step, prefill and decode together; longer prompts are prefilled in chunks (vLLM `--max-num-batched-tokens`; default 2048). */
  readonly maxNumBatchedTokens?: number;
  /** Requests that may wait for admission (`--max-queue`; default 256); past it, generation requests are 429 `queue_full` with Retry-After. */
  readonly maxQueue?: number;
  /** Automatic prefix caching (vLLM `--enable-prefix-caching`; default false): the engine's `enablePrefixCaching`. */
  readonly enablePrefixCaching?: boolean;
  /** Tokens per prefix-cache block (vLLM `--block-size`; default 16). */
  readonly blockSize?: number;
  /** Requires `Authorization: Bearer <apiKey>` on /v1/*, else 401 (vLLM `--api-key`; the CLI also reads `LORA_API_KEY`); /health and /metrics stay open. */
  readonly apiKey?: string;
  /** Serve /v1/load_lora_adapter and /v1/unload_lora_adapter (`--allow-runtime-lora`, vLLM's VLLM_ALLOW_RUNTIME_LORA_UPDATING); default false: they are 404. */
  readonly allowRuntimeLora?: boolean;
  /** The only directory /v1/load_lora_adapter may read adapters from (`--lora-root`, through `loraRootResolver`); without it every `lora_path` is 403. */
  readonly loraRoot?: string;
  /**
   * Threads that read, parse and check adapters off the main thread (`--lora-load-workers`; default
   * 1): also how many adapter loads run at once. 0 loads them on the main thread, between steps.
   */
  readonly loraLoadWorkers?: number;
  /** Largest request body in bytes (`--max-body-bytes`; default 1 MiB); larger is 413. */
  readonly maxBodyBytes?: number;
  /** A tokenizer to use instead of the model's (tests: a generated model with a generated tokenizer). */
  readonly tokenizer?: Tokenizer;
  /** The model's files in memory instead of `model` (tests, benchmarks). */
  readonly modelFiles?: Record<string, Uint8Array>;
  /** Progress lines (loading, warnings). */
  readonly log?: (line: string) => void;
  /**
   * Called once if the engine stops after a backend failure (the engine's `onFailure`; /health is
   * 503 from then on). `lora-serve` exits with status 1 then, as `vllm serve` does on
   * `EngineDeadError`, so that its supervisor restarts it.
   */
  readonly onEngineFailure?: (error: LoRAError) => void;
}

/** What {@link createServing} built, ready to serve: hand `app` to `listen`, call `dispose` when done. */
export interface Serving {
  /** The server, with the engine, the served models and Prometheus metrics wired in. */
  readonly app: LoraApp;
  /** The one engine every HTTP request runs in. */
  readonly engine: Engine;
  /** The LoRA runtime (core's `createLoRA`) whose host cache and device slots hold the adapters. */
  readonly runtime: LoRARuntime;
  /** The base model, its layers on `runtime` (`model.config` gives its shape). */
  readonly model: CausalLM;
  /** Reads adapter directories off the main thread (`--lora-root` loads, reloads after an eviction); pass it to `loraRootResolver`. */
  readonly loader: AdapterLoader;
  /** Closes the engine (aborting what runs) and frees the model and the runtime. */
  dispose(): Promise<void>;
}

const DEFAULT_QUEUE = 256;

/**
 * Loads what `lora-serve` serves — the model (a directory, a Hub id, or the embedded demo model),
 * its tokenizer, the adapters — and builds the engine, the served-model registry, the metrics
 * and the app. Adapters are read before the runtime is created, so that `maxLoraRank` can default
 * to what they need.
 */
export async function createServing(options: ServingOptions = {}): Promise<Serving> {
  const log = options.log ?? (() => {});
  // tfjs prints an "install tfjs-node" banner on the cpu backend; it is not what this server is about.
  // PROD silences it; IS_TEST would too, but also turns on tfjs' per-kernel leak bookkeeping, whose
  // stack (EngineState.numDataMovesStack) grows by one entry per kernel for ever: a heap leak.
  tf.env().set('PROD', true);
  const demo = options.model === undefined && options.modelFiles === undefined;
  const preset = options.preset ?? 'default';
  const loader = createAdapterLoader({ ...(options.loraLoadWorkers !== undefined ? { workers: options.loraLoadWorkers } : {}), log });
  // The local store of adapters that came over the network (see loadPathAdapter): one folder for this server, removed with it.
  let storeRoot: Promise<string> | undefined;
  let stored = 0;
  const storeDir = async () => join(await (storeRoot ??= mkdtemp(join(tmpdir(), 'lora-serve-adapters-'))), String(stored++));
  const cleanUp = async () => {
    await loader.close();
    if (storeRoot !== undefined) await rm(await storeRoot, { recursive: true, force: true });
  };
  let userAdapters: { adapter: LoRAAdapter; source: AdapterSource }[] = [];
  let runtime: LoRARuntime;
  try {
    if (options.adapters?.length) {
      log(`loading ${options.adapters.length} adapter(s)`);
      userAdapters = await Promise.all(options.adapters.map((a) => loadPathAdapter(a.name, a.path, { loader, storeDir })));
    }
    const maxLoras = options.maxLoras ?? 4;
    const demoRank = demo && userAdapters.length === 0 ? 32 : 0;
    const maxLoraRank = options.maxLoraRank ?? Math.max(16, demoRank, ...userAdapters.map((a) => a.adapter.rank));
    const served = demo && userAdapters.length === 0 ? 4 : userAdapters.length;
    runtime = await createLoRA({
      backend: options.backend ?? 'cpu',
      maxLoras,
      maxLoraRank,
      maxCpuLoras: options.maxCpuLoras ?? Math.max(2 * maxLoras, served),
      ...(options.maxCpuLoraBytes !== undefined ? { maxCpuLoraBytes: options.maxCpuLoraBytes } : {}),
      ...(options.maxSlotMemory !== undefined ? { maxSlotMemory: options.maxSlotMemory } : {}),
    });
  } catch (err) {
    await cleanUp();
    throw err;
  }
  try {
    let model: CausalLM;
    let tokenizer = options.tokenizer;
    let adapters = userAdapters;
    let baseModel: string;
    let baseRoot: string;
    if (demo) {
      if (!Object.hasOwn(DEMO_PRESETS, preset)) {
        throw new LoRAError('E_CONFIG', `--preset must be one of ${Object.keys(DEMO_PRESETS).join(', ')}, got ${JSON.stringify(preset)}`);
      }
      log(`building the embedded ${preset} model (seeded weights, nothing downloaded)`);
      const loaded = await loadDemoModel(preset, runtime);
      model = loaded.model;
      if (adapters.length === 0) {
        adapters = demoAdapters(loaded.config).map((a) => ({ adapter: a, source: memoryAdapter(a, `@lora/llama/demo:${a.id}`) }));
      }
      baseModel = options.servedModelName ?? `demo-${preset}`;
      baseRoot = `@lora/llama/demo:${preset}`;
    } else {
      let source: FileSource | Record<string, Uint8Array>;
      if (options.modelFiles !== undefined) source = options.modelFiles;
      else source = await locateSource(options.model as string);
      log(`loading the model from ${options.model ?? 'memory'}`);
      model = (await loadModel(source, { runtime })).model;
      if (tokenizer === undefined && options.modelFiles === undefined) {
        try {
          tokenizer = await loadTokenizer(source as FileSource);
        } catch (err) {
          if (!isLoRAError(err, 'E_NOT_FOUND')) throw err;
          log('no tokenizer.json next to the model: prompts must be token ids, and /v1/chat/completions is refused');
        }
      }
      baseModel = options.servedModelName ?? options.model ?? 'base';
      baseRoot = options.model ?? 'memory';
    }
    const metrics = promMetrics();
    const engine = new Engine({
      model,
      ...(tokenizer !== undefined ? { tokenizer } : {}),
      ...(options.maxNumSeqs !== undefined ? { maxNumSeqs: options.maxNumSeqs } : {}),
      ...(options.maxNumBatchedTokens !== undefined ? { maxNumBatchedTokens: options.maxNumBatchedTokens } : {}),
      maxQueue: options.maxQueue ?? DEFAULT_QUEUE,
      ...(options.enablePrefixCaching === true ? { enablePrefixCaching: true } : {}),
      ...(options.blockSize !== undefined ? { blockSize: options.blockSize } : {}),
      onStep: (step) => metrics.step(step, runtime.adapters.slots),
      ...(options.onEngineFailure !== undefined ? { onFailure: options.onEngineFailure } : {}),
    });
    const models = new ServedModels({ engine, baseModel, baseRoot });
    for (const { adapter, source } of adapters) await models.add(adapter.id, source);
    const resolveLoraPath = options.loraRoot !== undefined ? await loraRootResolver(options.loraRoot, { loader }) : undefined;
    const app = createApp({
      engine,
      models,
      metrics,
      ...(options.apiKey !== undefined ? { apiKey: options.apiKey } : {}),
      ...(options.maxBodyBytes !== undefined ? { maxBodyBytes: options.maxBodyBytes } : {}),
      allowRuntimeLora: options.allowRuntimeLora ?? false,
      ...(resolveLoraPath !== undefined ? { resolveLoraPath } : {}),
    });
    return {
      app,
      engine,
      runtime,
      model,
      loader,
      async dispose() {
        await engine.close();
        model.dispose();
        runtime.dispose();
        await cleanUp();
      },
    };
  } catch (err) {
    runtime.dispose();
    await cleanUp();
    throw err;
  }
}
