/** What the benchmark app reuses from the demo: the model, the adapters and the serving loop. */
export { type AdapterSpec, adapterFiles } from './adapters.js';
export { makeRequests } from './demo.js';
export { type ModelConfig, moduleSpecs, PRESETS } from './model/config.js';
export { LlamaModel } from './model/llama.js';
export { seededWeights } from './model/weights.js';
export { type Request, type ServeStats, serve } from './serve.js';
