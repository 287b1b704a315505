/** @lora/llama: Hugging Face Llama-family checkpoints, tokenizers and adapters on @lora/core. */
export { type LoadConfigOptions, type LoadedModel, type LoadModelOptions, loadModel, loadModelConfig } from './checkpoint.js';
export {
  type Architecture,
  DEFAULT_MAX_MODEL_BYTES,
  type LayerType,
  type Llama3RopeScaling,
  type ModelConfig,
  type ParseConfigOptions,
  parseModelConfig,
  SUPPORTED_ARCHITECTURES,
} from './config.js';
export { type AdapterSpec, adapterFiles, DEMO_ADAPTERS } from './fixture-adapters.js';
export {
  buildCheckpoint,
  CHECKPOINT_PRESETS,
  type Checkpoint,
  type CheckpointPreset,
  type CheckpointSpec,
  checkpointConfigJson,
  seededWeights,
  writeCheckpoint,
} from './fixtures.js';
export { greedy } from './greedy.js';
export {
  CausalLM,
  type CausalLMOptions,
  type Chunk,
  createCausalLM,
  LlamaForCausalLM,
  MistralForCausalLM,
  Qwen2ForCausalLM,
} from './model.js';
export { checkpointTensors, kvWidth, type ModuleSpec, modelFloat32Bytes, moduleSpecs, qWidth, type TensorSpec } from './modules.js';
export { mergeAdapter, referenceLogits } from './reference.js';
export { seeded, uniform } from './rng.js';
export { type LayerCache, Sequence } from './sequence.js';
export type { FileSource, LoadProgress, ReadOptions } from './source.js';
export { dirSource } from './sources/dir.js';
export { type FileMap, memorySource } from './sources/memory.js';
export type { ModelSource } from './sources/resolve.js';
export { type UrlSourceOptions, urlSource } from './sources/url.js';
export type { WeightMap } from './weights.js';
