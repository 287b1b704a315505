/** @lora/llama: Hugging Face Llama-family checkpoints, tokenizers and adapters on @lora/core. */
export type { FileSource, LoadProgress, ReadOptions } from './source.js';
