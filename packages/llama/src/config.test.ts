import { describe, expect, it } from 'vitest';
import { parseModelConfig } from './config.js';
import { CHECKPOINT_PRESETS, checkpointConfigJson } from './fixtures.js';
import { modelFloat32Bytes } from './modules.js';

const FILE = '/models/x/config.json';
const llama = checkpointConfigJson(CHECKPOINT_PRESETS['llama-untied']);
const parse = (patch: Record<string, unknown>, base: Record<string, unknown> = llama) => parseModelConfig({ ...base, ...patch }, FILE);
const fails = (patch: Record<string, unknown>, code: string, message: RegExp, base?: Record<string, unknown>) => {
  expect(() => parse(patch, base)).toThrow(message);
  try {
    parse(patch, base);
  } catch (err) {
    expect((err as { code?: string }).code).toBe(code);
    expect((err as Error).message).toContain(FILE);
  }
};

describe('parseModelConfig', () => {
  it('normalises a Llama config.json', () => {
    const c = parse({});
    expect(c).toMatchObject({
      architecture: 'LlamaForCausalLM',
      hiddenSize: 64,
      intermediateSize: 96,
      numHiddenLayers: 2,
      numAttentionHeads: 4,
      numKeyValueHeads: 1,
      headDim: 16,
      vocabSize: 128,
      ropeTheta: 10000,
      ropeScaling: null,
      tieWordEmbeddings: false,
      qkvBias: false,
      oProjBias: false,
      mlpBias: false,
      slidingWindow: null,
      layerTypes: ['full_attention', 'full_attention'],
      bosTokenId: 1,
      eosTokenIds: [2],
    });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('takes transformers’ defaults for optional fields', () => {
    const { num_key_value_heads, rope_theta, rms_norm_eps, max_position_embeddings, tie_word_embeddings, ...rest } = llama;
    const c = parseModelConfig({ ...rest, head_dim: null, rope_scaling: null }, FILE);
    expect(c).toMatchObject({
      numKeyValueHeads: 4,
      headDim: 16,
      ropeTheta: 10000,
      rmsNormEps: 1e-6,
      maxPositionEmbeddings: 2048,
      tieWordEmbeddings: false,
    });
    // By model_type alone, as old configs have it.
    const { architectures, ...untyped } = rest;
    expect(parseModelConfig({ ...untyped, model_type: 'qwen2' }, FILE).architecture).toBe('Qwen2ForCausalLM');
  });

  it('head_dim may differ from hidden_size / num_attention_heads', () => {
    expect(parse({ hidden_size: 48, head_dim: 16 })).toMatchObject({ headDim: 16, hiddenSize: 48 });
  });

  it('attention biases: Qwen2 on q/k/v always, Llama on q/k/v/o with attention_bias, MLP with mlp_bias', () => {
    expect(parseModelConfig(checkpointConfigJson(CHECKPOINT_PRESETS['qwen2-bias']), FILE)).toMatchObject({
      qkvBias: true,
      oProjBias: false,
      mlpBias: false,
    });
    expect(parse({ attention_bias: true, mlp_bias: true })).toMatchObject({ qkvBias: true, oProjBias: true, mlpBias: true });
    // MistralAttention has no bias whatever the file says (transformers ignores the key too).
    expect(parse({ attention_bias: true }, checkpointConfigJson(CHECKPOINT_PRESETS['mistral-sliding-window']))).toMatchObject({
      qkvBias: false,
    });
  });

  it('rope: llama3 scaling, the legacy "type" key and transformers 5 rope_parameters', () => {
    const scaling = { factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };
    const want = { ropeType: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 };
    expect(parse({ rope_scaling: { ...scaling, rope_type: 'llama3' }, rope_theta: 500000 })).toMatchObject({
      ropeTheta: 500000,
      ropeScaling: want,
    });
    expect(parse({ rope_scaling: { ...scaling, type: 'llama3' } }).ropeScaling).toMatchObject(want);
    expect(parse({ rope_parameters: { rope_type: 'llama3', rope_theta: 500000, ...scaling }, rope_theta: undefined })).toMatchObject({
      ropeTheta: 500000,
      ropeScaling: want,
    });
    expect(parse({ rope_scaling: { rope_type: 'default' } }).ropeScaling).toBeNull();
  });

  it('sliding windows: Mistral on every layer, Qwen2 only with use_sliding_window, from max_window_layers or layer_types', () => {
    const mistral = checkpointConfigJson(CHECKPOINT_PRESETS['mistral-sliding-window']);
    expect(parse({}, mistral)).toMatchObject({ slidingWindow: 4, layerTypes: ['sliding_attention', 'sliding_attention'] });
    expect(parse({ sliding_window: null }, mistral)).toMatchObject({
      slidingWindow: null,
      layerTypes: ['full_attention', 'full_attention'],
    });
    const qwen = checkpointConfigJson(CHECKPOINT_PRESETS['qwen2-sliding-window']);
    expect(parse({}, qwen)).toMatchObject({ slidingWindow: 3, layerTypes: ['full_attention', 'sliding_attention'] });
    expect(parse({ use_sliding_window: false }, qwen)).toMatchObject({
      slidingWindow: null,
      layerTypes: ['full_attention', 'full_attention'],
    });
    expect(parse({ layer_types: ['sliding_attention', 'full_attention'] }, qwen)).toMatchObject({
      layerTypes: ['sliding_attention', 'full_attention'],
    });
    // Llama has no sliding window: the key is ignored, as transformers ignores it.
    expect(parse({ sliding_window: 4 }).slidingWindow).toBeNull();
    fails({ layer_types: ['sliding_attention'] }, 'E_CONFIG', /layer_types must be a list of 2 \(num_hidden_layers\)/, qwen);
  });

  it('eos_token_id may be a list; ids must lie in the vocabulary', () => {
    expect(parse({ eos_token_id: [2, 7] }).eosTokenIds).toEqual([2, 7]);
    expect(parse({ eos_token_id: null }).eosTokenIds).toEqual([]);
    fails({ eos_token_id: [2, 128] }, 'E_CONFIG', /eos_token_id must be an integer in \[0, 127\] or a list/);
  });

  it('an unsupported architecture names itself and lists the supported ones', () => {
    fails(
      { architectures: ['GemmaForCausalLM'], model_type: 'gemma' },
      'E_UNSUPPORTED',
      /\["GemmaForCausalLM"\] is not supported; supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM/,
    );
    fails(
      { architectures: undefined, model_type: 'phi3' },
      'E_UNSUPPORTED',
      /model_type "phi3" is not supported; supported: llama, mistral, qwen2/,
    );
    fails({ architectures: undefined, model_type: undefined }, 'E_UNSUPPORTED', /names no architecture.*supported: LlamaForCausalLM/);
    fails({ model_type: 'qwen2' }, 'E_CONFIG', /architectures says LlamaForCausalLM but model_type is "qwen2"/);
    fails({ architectures: 'LlamaForCausalLM' }, 'E_CONFIG', /architectures must be a non-empty list/);
    fails({ architectures: undefined, model_type: 'constructor' }, 'E_UNSUPPORTED', /model_type "constructor" is not supported/);
  });

  it.each([
    [{ hidden_act: 'gelu' }, /hidden_act must be "silu".*got "gelu"/],
    [{ rope_scaling: { rope_type: 'yarn', factor: 4 } }, /rope_scaling: rope_type must be "default" or "llama3".*got "yarn"/],
    [{ rope_scaling: { type: 'linear', factor: 2 } }, /rope_type must be "default" or "llama3"/],
    [{ quantization_config: { quant_method: 'gptq' } }, /quantization_config must be absent/],
    [{ partial_rotary_factor: 0.5 }, /partial_rotary_factor must be 1/],
  ])('refuses what would change the math: %j', (patch, message) => fails(patch, 'E_UNSUPPORTED', message));

  it.each([
    [{ hidden_size: 0 }, /hidden_size must be an integer in \[1, 131072\], got 0/],
    [{ hidden_size: 1e12 }, /hidden_size must be an integer in \[1, 131072\], got 1000000000000/],
    [{ hidden_size: '64' }, /hidden_size must be an integer.*got "64"/],
    [{ num_hidden_layers: 2.5 }, /num_hidden_layers must be an integer/],
    [{ vocab_size: -1 }, /vocab_size must be an integer/],
    [{ intermediate_size: undefined }, /intermediate_size is missing/],
    [{ num_key_value_heads: 3 }, /num_key_value_heads must be a divisor of num_attention_heads \(4\)/],
    [{ num_key_value_heads: 8 }, /num_key_value_heads must be an integer in \[1, 4\]/],
    [{ head_dim: 15 }, /head_dim \(given\) is 15; rotary embeddings need an even head_dim/],
    [{ rms_norm_eps: 0 }, /rms_norm_eps must be a number in \(0, 1\]/],
    [{ rope_theta: -5 }, /rope_theta must be a number/],
    [
      { rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 4, high_freq_factor: 1, original_max_position_embeddings: 64 } },
      /low_freq_factor must be less than high_freq_factor \(1\)/,
    ],
    [{ rope_scaling: { rope_type: 'llama3', factor: 8 } }, /low_freq_factor is missing/],
    [{ max_position_embeddings: 2 ** 30 }, /max_position_embeddings must be an integer in \[1, 16777216\]/],
    [{ tie_word_embeddings: 'yes' }, /tie_word_embeddings must be true or false/],
  ])('refuses invalid numbers: %j', (patch, message) => fails(patch, 'E_CONFIG', message));

  it('refuses a model too large as float32 before anything is allocated, with the limit as an option', () => {
    const huge = {
      hidden_size: 65536,
      intermediate_size: 262144,
      num_hidden_layers: 1024,
      num_attention_heads: 512,
      num_key_value_heads: 512,
      vocab_size: 4000000,
    };
    fails(
      huge,
      'E_CAPACITY',
      /describes a LlamaForCausalLM of \d+ bytes as float32 \(\d+\.\d+ GiB\); the limit is maxModelBytes = 8589934592/,
    );
    const c = parse({});
    expect(() => parseModelConfig(llama, FILE, { maxModelBytes: modelFloat32Bytes(c) - 1 })).toThrow(/E_CAPACITY/);
    expect(parseModelConfig(llama, FILE, { maxModelBytes: modelFloat32Bytes(c) }).hiddenSize).toBe(64);
    expect(() => parseModelConfig(llama, FILE, { maxModelBytes: -1 })).toThrow(/maxModelBytes must be a positive number/);
  });

  it('refuses text that is not JSON or not an object', () => {
    expect(() => parseModelConfig('{"hidden_size": ', FILE)).toThrow(/E_FORMAT.*config\.json is not valid JSON/);
    expect(() => parseModelConfig('[1, 2]', FILE)).toThrow(/E_CONFIG.*must hold a JSON object, got \[1, 2\]/);
  });
});
