/** @lora/llama: Hugging Face Llama-family checkpoints, tokenizers and adapters on @lora/core. */

export { type LoadAdapterOptions, loadPeftAdapterFrom } from './adapter-source.js';
export { applyChatTemplate, type ChatMessage, type ChatTemplateOptions, encodeChat } from './chat.js';
export { DecodeStream, type DecodeStreamOptions } from './detokenize.js';
export { type LoadPeftAdapterFromHubOptions, loadPeftAdapterFromHub } from './hub.js';
export type { FileSource, LoadProgress, ReadOptions } from './source.js';
export { type HubSource, type HubSourceOptions, hubSource } from './sources/hub.js';
export { type StopResult, StopStringMatcher, type StopStringOptions } from './stop.js';
export { type DecodeOptions, type EncodeOptions, type LoadTokenizerOptions, loadTokenizer, type Tokenizer } from './tokenizer.js';
