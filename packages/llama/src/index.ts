/** @lora/llama: Hugging Face Llama-family checkpoints, tokenizers and adapters on @lora/core. */

export { applyChatTemplate, type ChatMessage, type ChatTemplateOptions, encodeChat } from './chat.js';
export { DecodeStream, type DecodeStreamOptions } from './detokenize.js';
export type { FileSource, LoadProgress, ReadOptions } from './source.js';
export { type StopResult, StopStringMatcher, type StopStringOptions } from './stop.js';
export { type DecodeOptions, type EncodeOptions, type LoadTokenizerOptions, loadTokenizer, type Tokenizer } from './tokenizer.js';
