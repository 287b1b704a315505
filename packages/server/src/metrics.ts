import type { FinishReason, StepInfo } from '@lora/llama';

/** What the server knows at a scrape: the gauges. */
export interface MetricsSnapshot {
  /** The served name of the base model. */
  readonly baseModel: string;
  /** Requests queued in the engine, not yet admitted to the batch (`vllm:num_requests_waiting`; the queue holds at most `--max-queue`). */
  readonly waiting: number;
  /** Requests in the engine's running batch (`vllm:num_requests_running`; at most `--max-num-seqs`). */
  readonly running: number;
  /** KV-cache tokens held over `kvCacheTokens` (0–1). */
  readonly kvCacheUsage: number;
  /** The KV-cache tokens the engine plans for (its `maxKvTokens`). */
  readonly kvCacheTokens: number;
  /** Device slots (`--max-loras`). */
  readonly maxLoras: number;
  /** Served names of the distinct adapters of running requests, each in a device slot (`running_lora_adapters` of `vllm:lora_requests_info`). */
  readonly runningAdapters: readonly string[];
  /** Served names of the adapters of waiting requests that no running request uses (`waiting_lora_adapters` of `vllm:lora_requests_info`). */
  readonly waitingAdapters: readonly string[];
  /** Adapters served by name, as /v1/models lists them besides the base model. */
  readonly adaptersServed: number;
  /** Adapters registered in the runtime's host cache (at most `--max-cpu-loras`), including unloaded ones requests still hold. */
  readonly adaptersLoaded: number;
  /** Adapters in device slots (at most `--max-loras`). */
  readonly adaptersActive: number;
  /** Distinct adapters of the requests in the running batch. */
  readonly adaptersRunning: number;
  /** Prompt tokens looked up in the prefix cache since the engine started (`vllm:prefix_cache_queries`; 0 without `--enable-prefix-caching`). */
  readonly prefixCacheQueries: number;
  /** Of those, tokens served from the cache (`vllm:prefix_cache_hits`). */
  readonly prefixCacheHits: number;
  /** Adapters read from their sources and registered since the server started (`ServedModels.counters`). */
  readonly adapterLoads: number;
  /** Adapters evicted from the host cache to make room since the server started. */
  readonly adapterEvictions: number;
}

/**
 * The server's instruments, as an interface so that the app stays free of Node imports (the
 * Prometheus implementation, `promMetrics` in `@lora/server/node`, uses prom-client).
 */
export interface ServerMetrics {
  /** One HTTP request to a generation endpoint answered with `status`; `model` is the served name ('' when it is not served). */
  request(endpoint: string, status: number, model: string): void;
  /** One generation ended. */
  finished(model: string, reason: FinishReason, promptTokens: number, generatedTokens: number): void;
  /** Seconds from the request's arrival to its first token. */
  firstToken(seconds: number): void;
  /** Seconds between consecutive tokens of one request, once per token after the first; a delta of n tokens counts as n equal gaps. */
  interToken(seconds: number): void;
  /** Seconds from arrival to the end of the generation. */
  e2e(seconds: number): void;
  /** After every engine step, with the runtime's device slots: counts adapter swaps (activations into a slot). */
  step(step: StepInfo, slots: readonly (string | null)[]): void;
  /** The exposition text, gauges read from the snapshot. */
  render(snapshot: MetricsSnapshot): Promise<{
    /** The Content-Type header to answer GET /metrics with (the exposition format and its version). */
    contentType: string;
    /** The exposition text: every series, gauges set from the snapshot. */
    body: string;
  }>;
}
