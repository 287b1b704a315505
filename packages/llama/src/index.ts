/** @lora/llama: Hugging Face Llama-family checkpoints, tokenizers and adapters on @lora/core. */
export {};
