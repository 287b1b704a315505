import { describe, expect, it } from 'vitest';
import { parseModelConfig } from './config.js';
import { modelFloat32Bytes } from './modules.js';

// config.json files of released checkpoints, as published on the Hugging Face Hub.
const LLAMA_3_2_1B = {
  architectures: ['LlamaForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 128000,
  eos_token_id: 128001,
  head_dim: 64,
  hidden_act: 'silu',
  hidden_size: 2048,
  initializer_range: 0.02,
  intermediate_size: 8192,
  max_position_embeddings: 131072,
  mlp_bias: false,
  model_type: 'llama',
  num_attention_heads: 32,
  num_hidden_layers: 16,
  num_key_value_heads: 8,
  pretraining_tp: 1,
  rms_norm_eps: 1e-5,
  rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
  rope_theta: 500000.0,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  transformers_version: '4.45.0.dev0',
  use_cache: true,
  vocab_size: 128256,
};

const QWEN_2_5_0_5B = {
  architectures: ['Qwen2ForCausalLM'],
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151645,
  hidden_act: 'silu',
  hidden_size: 896,
  initializer_range: 0.02,
  intermediate_size: 4864,
  max_position_embeddings: 32768,
  max_window_layers: 21,
  model_type: 'qwen2',
  num_attention_heads: 14,
  num_hidden_layers: 24,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  sliding_window: 32768,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  transformers_version: '4.43.1',
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 151936,
};

const MISTRAL_7B_V0_1 = {
  architectures: ['MistralForCausalLM'],
  bos_token_id: 1,
  eos_token_id: 2,
  hidden_act: 'silu',
  hidden_size: 4096,
  initializer_range: 0.02,
  intermediate_size: 14336,
  max_position_embeddings: 32768,
  model_type: 'mistral',
  num_attention_heads: 32,
  num_hidden_layers: 32,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-5,
  rope_theta: 10000.0,
  sliding_window: 4096,
  tie_word_embeddings: false,
  torch_dtype: 'bfloat16',
  transformers_version: '4.34.0.dev0',
  use_cache: true,
  vocab_size: 32000,
};

describe('released configs', () => {
  // Parameter counts as their model cards give them: the tensor catalogue (biases, tied heads) is right.
  it('Llama 3.2 1B: llama3 rope, tied embeddings, 1,235,814,400 parameters', () => {
    const c = parseModelConfig(LLAMA_3_2_1B, 'meta-llama/Llama-3.2-1B/config.json');
    expect(c).toMatchObject({ headDim: 64, numKeyValueHeads: 8, tieWordEmbeddings: true, ropeTheta: 500000, eosTokenIds: [128001] });
    expect(c.ropeScaling).toEqual({
      ropeType: 'llama3',
      factor: 32,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositionEmbeddings: 8192,
    });
    expect(modelFloat32Bytes(c) / 4).toBe(1_235_814_400);
  });

  it('Qwen2.5 0.5B: q/k/v biases, no sliding window (use_sliding_window false), 494,032,768 parameters', () => {
    const c = parseModelConfig(QWEN_2_5_0_5B, 'Qwen/Qwen2.5-0.5B/config.json');
    expect(c).toMatchObject({ qkvBias: true, oProjBias: false, slidingWindow: null, headDim: 64, tieWordEmbeddings: true });
    expect(modelFloat32Bytes(c) / 4).toBe(494_032_768);
  });

  it('Mistral 7B v0.1: a 4096 sliding window on every layer, 7,241,732,096 parameters, over the default size limit', () => {
    expect(() => parseModelConfig(MISTRAL_7B_V0_1, 'mistralai/Mistral-7B-v0.1/config.json')).toThrow(
      /E_CAPACITY.*MistralForCausalLM of 28966928384 bytes as float32 \(26\.98 GiB\); the limit is maxModelBytes/,
    );
    const c = parseModelConfig(MISTRAL_7B_V0_1, 'mistralai/Mistral-7B-v0.1/config.json', { maxModelBytes: 2 ** 35 });
    expect(c.slidingWindow).toBe(4096);
    expect(new Set(c.layerTypes)).toEqual(new Set(['sliding_attention']));
    expect(modelFloat32Bytes(c) / 4).toBe(7_241_732_096);
  });
});
