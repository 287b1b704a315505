/**
 * @packageDocumentation
 * @lora/server: an OpenAI-compatible multi-LoRA server (vLLM's LoRA API) for @lora/llama's
 * Engine — web-standard handlers (Hono); `@lora/server/node` serves them over HTTP on Node.
 */
export { type AppOptions, createApp, type LoraApp } from './app.js';
export { DEFAULT_MAX_BODY_BYTES } from './http/body.js';
export { ApiError, fromLoRAError, type OpenAIErrorBody } from './http/errors.js';
export type { MetricsSnapshot, ServerMetrics } from './metrics.js';
export { type AdapterSource, type Lease, type ModelCard, memoryAdapter, ServedModels } from './models.js';
export { COMPLETIONS_DEFAULT_MAX_TOKENS } from './openai/completions.js';
export type { LoraPathResolver } from './routes/lora.js';
