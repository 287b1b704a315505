/** The demo's browser-safe parts, shared with the benchmark app and the playground. */
export { type AdapterSpec, adapterFiles, DEMO_ADAPTERS, demoAdaptersInMemory } from './adapter-specs.js';
export { type CheckResult, checkAgainstMerged } from './check.js';
export { headDim, type ModelConfig, moduleSpecs, PRESETS } from './model/config.js';
export { type Chunk, LlamaModel, Sequence } from './model/llama.js';
export { type BaseWeights, seededWeights } from './model/weights.js';
export { makeRequests } from './requests.js';
export { type Request, type ServeStats, serve } from './serve.js';
export { runSession, type SessionPhase, type SessionReport } from './session.js';
