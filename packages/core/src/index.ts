/**
 * @packageDocumentation
 * `@lora/core`: the user API (runtime, layers, adapters, PEFT, errors, the reference oracle).
 * Backend authors import `@lora/core/backend`.
 */
export { type AdapterModuleWeights, createAdapter, type LoRAAdapter } from './adapters/adapter.js';
export { AdapterManager, adapterBytes, type MixTerm, type RequestAdapter } from './adapters/manager.js';
export {
  loadPeftAdapter,
  loadPeftAdapterFromDir,
  type PeftAdapter,
  type PeftAdapterInput,
  type PeftDirOptions,
} from './adapters/peft.js';
export { isTargeted, moduleScale, type PeftAdapterConfig, parsePeftConfig } from './adapters/peft-config.js';
export { type ModuleToWrite, type PeftFiles, serializePeftAdapter, writePeftAdapterDir } from './adapters/peft-writer.js';
export type { LoRABackend, LoRABackendFactory, LoRABackendStats } from './backend.js';
export type { BackendImporter } from './backend-import.js';
export type { BLayout } from './calls.js';
export {
  type BackendCandidate,
  type BackendChoice,
  CONFIG_LIMITS,
  DEFAULT_MAX_LORA_RANK,
  DEFAULT_MAX_LORAS,
  DEFAULT_MAX_NUM_TOKENS,
  DEFAULT_MAX_SLOT_MEMORY,
  type LoRAConfig,
  type ResolvedLoRAConfig,
  resolveConfig,
} from './config.js';
export { createLoRA, type LoRARuntime } from './create.js';
export { describeValue, isLoRAError, LORA_ERROR_CODES, LoRAError, type LoRAErrorCode, MAX_ERROR_MESSAGE } from './errors.js';
export { type LocalFile, openLocalFile, readLocalFile } from './files.js';
export { bf16ToFloat, floatToBf16, floatToHalf, halfToFloat, roundToBf16Array } from './formats/half.js';
export {
  decodableDType,
  decodeSafetensorsData,
  MAX_HEADER_BYTES,
  MAX_TENSORS,
  type ParsedSafetensors,
  type ParseSafetensorsOptions,
  parseSafetensors,
  parseSafetensorsLayout,
  readSafetensorsHeaderLength,
  type SafetensorsDType,
  type SafetensorsEntry,
  type SafetensorsLayout,
  type SafetensorsTensor,
  type SerializableDType,
  serializeSafetensors,
} from './formats/safetensors.js';
export type { HeaderEntry } from './formats/safetensors-header.js';
export { LoRAEmbedding } from './layers/embedding.js';
export type { LoRALayer, MatrixInput } from './layers/layer.js';
export { type LinearLayerOptions, LoRALinear, LoRALogits, MergedLoRALinear } from './layers/linear.js';
export type { BatchMapping, IndexArray, LoRAMapping, LoRAMetadata, LoRASegment, ScaleArray } from './metadata.js';
export { type ExpandOptions, type LinearOptions, PunicaWrapper, type PunicaWrapperConfig, type SlotRankArray } from './punica.js';
export type { Floats, ReferenceResult } from './reference.js';
export * as reference from './reference.js';
export { createReferenceBackend } from './reference-backend.js';
export { backendPackageName, FIRST_PARTY_BACKENDS, listLoRABackends, setBackendImporter } from './registry.js';
export { checkStrength } from './validate.js';
