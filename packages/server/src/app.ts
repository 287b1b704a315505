import type { Engine } from '@lora/llama';
import { type Context, Hono } from 'hono';
import { InFlight, type ServerContext } from './context.js';
import { bearerKeyCheck } from './http/auth.js';
import { DEFAULT_MAX_BODY_BYTES } from './http/body.js';
import { ApiError, fromLoRAError, plainMessage } from './http/errors.js';
import type { ServerMetrics } from './metrics.js';
import { ServedModels } from './models.js';
import { chatCompletions } from './routes/chat.js';
import { completions } from './routes/completions.js';
import type { RequestLabel } from './routes/generation.js';
import { type LoraPathResolver, loadLoraAdapter, unloadLoraAdapter } from './routes/lora.js';

/** What {@link createApp} serves and how: the engine, the served names, auth, limits and runtime adapter loading. */
export interface AppOptions {
  /** The one engine every request runs in (continuous batching across all HTTP requests). */
  readonly engine: Engine;
  /** The served models; default: the base model alone, named `baseModel`. Add adapters with `models.add`. */
  readonly models?: ServedModels;
  /** The base model's name in requests and /v1/models (vLLM `--served-model-name`; default "base"). */
  readonly baseModel?: string;
  /** Requires `Authorization: Bearer <apiKey>` on /v1/* (vLLM `--api-key`); /health and /metrics stay open. */
  readonly apiKey?: string;
  /** Largest request body (default 1 MiB); larger is 413. */
  readonly maxBodyBytes?: number;
  /** Serve /v1/load_lora_adapter and /v1/unload_lora_adapter (vLLM's VLLM_ALLOW_RUNTIME_LORA_UPDATING); otherwise they are 404. */
  readonly allowRuntimeLora?: boolean;
  /** How a `lora_path` becomes an adapter; without one, loading from paths is refused (403). */
  readonly resolveLoraPath?: LoraPathResolver;
  /**
   * Where the server reports requests, tokens and engine steps, and what renders GET /metrics
   * (`promMetrics` from `@lora/server/node` for Prometheus); without it nothing is counted and
   * /metrics is 404.
   */
  readonly metrics?: ServerMetrics;
  /** Retry-After seconds on 429 (default 1). */
  readonly retryAfterSeconds?: number;
  /** Unexpected errors (answered as 500). Default: console.error. */
  readonly onError?: (err: unknown) => void;
}

/** The server as a fetch handler (Node through `@hono/node-server`, or any runtime with Request/Response). */
export interface LoraApp {
  /** The Hono app behind {@link LoraApp.fetch}, every route registered: for mounting the server inside a larger Hono app. */
  readonly hono: Hono;
  /**
   * Answers one web-standard Request — the handler to give `@hono/node-server`, a Service Worker
   * or any fetch runtime. An arrow function, so it can be passed on without its object.
   */
  readonly fetch: (request: Request) => Response | Promise<Response>;
  /** The engine from {@link AppOptions.engine}; `listen`'s shutdown closes it to abort what is left after the grace period. */
  readonly engine: Engine;
  /** The served-model registry the routes use ({@link AppOptions.models} or the one made for the base model): add and remove adapters here while serving. */
  readonly models: ServedModels;
  /** HTTP requests being answered (streams until their last byte). */
  readonly inFlight: number;
  /** True once {@link LoraApp.startDraining} was called: from then on /v1/* and /health answer 503 (/metrics still answers). */
  readonly draining: boolean;
  /** Refuses new requests with 503 (and /health with 503); requests in flight go on. */
  startDraining(): void;
  /** Resolves when no request is in flight. */
  idle(): Promise<void>;
}

const draining503 = () =>
  new ApiError(503, 'the server is shutting down', { code: 'unavailable', headers: { connection: 'close' } }).response();

/**
 * The OpenAI-compatible multi-LoRA server as a Hono app: web-standard Request → Response, no Node
 * imports, so the same app can run in a Service Worker or any fetch runtime; `@lora/server/node`
 * serves it over HTTP.
 */
export function createApp(options: AppOptions): LoraApp {
  const { engine, metrics } = options;
  const models = options.models ?? new ServedModels({ engine, baseModel: options.baseModel ?? 'base' });
  const inFlight = new InFlight();
  let draining = false;
  const ctx: ServerContext = {
    engine,
    models,
    metrics,
    inFlight,
    maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    retryAfterSeconds: options.retryAfterSeconds ?? 1,
    draining: () => draining,
  };
  const logError = options.onError ?? ((err: unknown) => console.error(err));
  const app = new Hono();

  app.onError((err) => {
    const e = err instanceof ApiError ? err : fromLoRAError(err);
    if (e.status >= 500 && e.status !== 503) logError(e.cause ?? err);
    return e.response();
  });
  app.notFound((c) => new ApiError(404, `no route for ${c.req.method} ${new URL(c.req.url).pathname}`, { code: 'not_found' }).response());

  // vLLM's api_server: /health is open; the API key guards /v1 only (its AuthenticationMiddleware skips other paths).
  // …and answers 503 once the engine has stopped after a backend failure (vLLM: EngineDeadError), so that a liveness probe restarts the server.
  app.get('/health', () => {
    if (engine.error !== undefined) return new ApiError(503, plainMessage(engine.error), { code: 'engine_dead' }).response();
    return draining ? draining503() : new Response(null, { status: 200 });
  });
  app.get('/metrics', async () => {
    if (metrics === undefined) throw new ApiError(404, 'metrics are not enabled on this server', { code: 'not_found' });
    const s = engine.stats();
    const { adapters } = engine.model.runtime;
    const served = (ids: readonly string[]) => ids.map((id) => models.nameOf(id) ?? id);
    const runningAdapters = served(s.runningAdapters);
    const { contentType, body } = await metrics.render({
      baseModel: models.baseModel,
      waiting: s.waiting,
      running: s.running,
      kvCacheUsage: s.kvCacheUsage,
      kvCacheTokens: engine.maxKvTokens,
      maxLoras: adapters.slots.length,
      runningAdapters,
      waitingAdapters: served(s.waitingAdapters).filter((name) => !runningAdapters.includes(name)),
      adaptersServed: models.adapters.length,
      adaptersLoaded: adapters.registered.length,
      adaptersActive: adapters.slots.filter((id) => id !== null).length,
      adaptersRunning: s.runningAdapters.length,
      prefixCacheQueries: s.prefixCacheQueries,
      prefixCacheHits: s.prefixCacheHits,
      adapterLoads: models.counters.loads,
      adapterEvictions: models.counters.evictions,
    });
    return new Response(body, { headers: { 'content-type': contentType } });
  });

  app.use('/v1/*', async (_c, next) => {
    if (draining) return draining503();
    await next();
  });
  if (options.apiKey !== undefined) {
    const check = bearerKeyCheck(options.apiKey);
    app.use('/v1/*', async (c, next) => {
      await check(c.req.raw);
      await next();
    });
  }

  app.get('/v1/models', () => Response.json({ object: 'list', data: models.list() }));
  app.get('/v1/models/:model{.+}', (c) => {
    const card = models.list().find((m) => m.id === c.req.param('model'));
    if (card === undefined) throw new ApiError(404, `The model \`${c.req.param('model')}\` does not exist.`, { code: 'model_not_found' });
    return Response.json(card);
  });

  const generation =
    (endpoint: string, handler: (ctx: ServerContext, request: Request, arrival: number, label: RequestLabel) => Promise<Response>) =>
    async (c: Context) => {
      const arrival = performance.now();
      const label: RequestLabel = { model: '' };
      let status = 500;
      try {
        const res = await handler(ctx, c.req.raw, arrival, label);
        status = res.status;
        return res;
      } catch (err) {
        status = err instanceof ApiError ? err.status : fromLoRAError(err).status;
        throw err;
      } finally {
        metrics?.request(endpoint, status, label.model);
      }
    };
  app.post('/v1/completions', generation('/v1/completions', completions));
  app.post('/v1/chat/completions', generation('/v1/chat/completions', chatCompletions));

  if (options.allowRuntimeLora) {
    app.post('/v1/load_lora_adapter', (c) => loadLoraAdapter(ctx, c.req.raw, options.resolveLoraPath));
    app.post('/v1/unload_lora_adapter', (c) => unloadLoraAdapter(ctx, c.req.raw));
  }

  return {
    hono: app,
    fetch: (request) => app.fetch(request),
    engine,
    models,
    get inFlight() {
      return inFlight.count;
    },
    get draining() {
      return draining;
    },
    startDraining() {
      draining = true;
    },
    idle: () => inFlight.idle(),
  };
}
