/** The demo's browser-safe parts, shared with the benchmark app and the playground. */
export { type AdapterSpec, adapterFiles, DEMO_ADAPTERS, moduleSpecs } from '@lora/llama';
export { type CheckResult, checkAgainstMerged } from './check.js';
export { type BaseWeights, type Chunk, LlamaModel, Sequence, seededWeights } from './legacy-model.js';
export { runSession, type SessionPhase, type SessionReport } from './legacy-session.js';
export { demoAdaptersInMemory } from './memory-adapters.js';
export { type DemoModelConfig as ModelConfig, type DemoPreset, demoModelConfig, headDim, PRESETS, presetSpec } from './presets.js';
export { makeRequests } from './requests.js';
export { type Request, type ServeStats, serve } from './serve.js';
