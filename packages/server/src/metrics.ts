import type { FinishReason, StepInfo } from '@lora/llama';

/** What the server knows at a scrape: the gauges. */
export interface MetricsSnapshot {
  readonly waiting: number;
  readonly running: number;
  readonly kvCacheUsage: number;
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
