import type { FinishReason, StepInfo } from '@lora/llama';

/** What the server knows at a scrape: the gauges. */
export interface MetricsSnapshot {
  /** The served name of the base model. */
  readonly baseModel: string;
  readonly waiting: number;
  readonly running: number;
  /** KV-cache tokens held over `kvCacheTokens` (0–1). */
  readonly kvCacheUsage: number;
  /** The KV-cache tokens the engine plans for (its `maxKvTokens`). */
  readonly kvCacheTokens: number;
  /** Device slots (`--max-loras`). */
  readonly maxLoras: number;
  /** Served names of the adapters of running requests (each in a device slot), and of waiting requests whose adapter is not running. */
  readonly runningAdapters: readonly string[];
  readonly waitingAdapters: readonly string[];
  /** Adapters served by name, registered in the runtime's host cache, in device slots, and used by running requests. */
  readonly adaptersServed: number;
  readonly adaptersLoaded: number;
  readonly adaptersActive: number;
  readonly adaptersRunning: number;
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
  /** Seconds from the request's arrival to its first token, and between later tokens. */
  firstToken(seconds: number): void;
  interToken(seconds: number): void;
  /** Seconds from arrival to the end of the generation. */
  e2e(seconds: number): void;
  /** After every engine step, with the runtime's device slots: counts adapter swaps (activations into a slot). */
  step(step: StepInfo, slots: readonly (string | null)[]): void;
  /** The exposition text, gauges read from the snapshot. */
  render(snapshot: MetricsSnapshot): Promise<{ contentType: string; body: string }>;
}
