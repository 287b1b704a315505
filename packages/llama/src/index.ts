/**
 * @packageDocumentation
 * @lora/llama: Hugging Face Llama-family checkpoints, tokenizers and adapters on @lora/core.
 */

export { type LoadAdapterOptions, loadPeftAdapterFrom } from './adapter-source.js';
export { applyChatTemplate, type ChatMessage, type ChatTemplateOptions, encodeChat } from './chat.js';
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
export { DecodeStream, type DecodeStreamOptions } from './detokenize.js';
export {
  collect,
  Engine,
  type EngineOptions,
  type EngineStats,
  type GenerateRequest,
  QueueFullError,
  type StepInfo,
} from './engine/engine.js';
export type { FinishReason, GenerationDelta, GenerationResult, RequestHandle } from './engine/handle.js';
export { argmax, type ResolvedSampling, resolveSampling, Sampler, type SamplingParams } from './engine/sampling.js';
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
export { type LoadPeftAdapterFromHubOptions, loadPeftAdapterFromHub } from './hub.js';
export { type DecodeStep, decodeLoRAShare, inherentShare, type LoRAStepShare, queueDecodeStep } from './lora-share.js';
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
export type { FileSource, LoadProgress, RandomAccessFile, ReadOptions } from './source.js';
export { dirSource } from './sources/dir.js';
export { type HubSource, type HubSourceOptions, hubSource } from './sources/hub.js';
export { locateSource } from './sources/locate.js';
export { type FileMap, memorySource } from './sources/memory.js';
export type { ModelSource } from './sources/resolve.js';
export { type UrlSourceOptions, urlSource } from './sources/url.js';
export { type StopResult, StopStringMatcher, type StopStringOptions } from './stop.js';
export { type DecodeOptions, type EncodeOptions, type LoadTokenizerOptions, loadTokenizer, type Tokenizer } from './tokenizer.js';
export type { WeightMap } from './weights.js';
