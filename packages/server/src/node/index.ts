/**
 * @packageDocumentation
 * @lora/server/node: the server on Node — HTTP through @hono/node-server with graceful shutdown,
 * Prometheus metrics through prom-client, `--lora-root` confinement for runtime adapter loading,
 * and the loader behind the `lora-serve` CLI.
 */
export type { AdapterDirJob, AdapterDirResult } from './adapter-dir.js';
export { type AdapterLoader, type AdapterLoaderOptions, createAdapterLoader } from './adapter-loader.js';
export { type AdapterArg, createServing, type Serving, type ServingOptions } from './load.js';
export { loraRootResolver } from './lora-root.js';
export { promMetrics } from './prom-metrics.js';
export { type HttpServer, type ListenOptions, listen } from './serve.js';
