import { type PeftFiles, serializePeftAdapter } from '@lora/core';

/**
 * A small PEFT LoRA adapter in the files PEFT's save_pretrained writes (adapter_config.json and
 * adapter_model.safetensors) for q_proj/v_proj of `layers` layers of a `hidden`-wide model.
 * `seed` changes the weights, so that two fixtures differ.
 */
export function testAdapterFiles(options: { seed?: number; rank?: number; hidden?: number; layers?: number } = {}): PeftFiles {
  const { seed = 1, rank = 4, hidden = 32, layers = 2 } = options;
  let state = seed >>> 0 || 1;
  const random = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32 - 0.5;
  };
  const matrix = (n: number) => Float32Array.from({ length: n }, random);
  const modules = Array.from({ length: layers }, (_, layer) =>
    ['q_proj', 'v_proj'].map((proj) => ({
      name: `model.layers.${layer}.self_attn.${proj}`,
      kind: 'linear' as const,
      rank,
      a: matrix(rank * hidden),
      b: matrix(hidden * rank),
      inFeatures: hidden,
      outFeatures: hidden,
    })),
  ).flat();
  return serializePeftAdapter(modules, {
    r: rank,
    lora_alpha: 2 * rank,
    target_modules: ['q_proj', 'v_proj'],
    base_model_name_or_path: 'HuggingFaceTB/SmolLM2-135M',
    task_type: 'CAUSAL_LM',
  });
}
