/** Llama-shaped decoder sizes. */
export interface ModelConfig {
  name: string;
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  vocab: number;
  ropeTheta: number;
  rmsEps: number;
  maxPositions: number;
}

const base = { ropeTheta: 10000, rmsEps: 1e-5, maxPositions: 1024 };

export const PRESETS: Record<string, ModelConfig> = {
  tiny: { name: 'tiny', layers: 2, hidden: 64, heads: 4, kvHeads: 1, intermediate: 172, vocab: 512, ...base },
  default: { name: 'default', layers: 4, hidden: 512, heads: 8, kvHeads: 2, intermediate: 1376, vocab: 4096, ...base },
  small: { name: 'small', layers: 4, hidden: 2048, heads: 16, kvHeads: 4, intermediate: 5504, vocab: 4096, ...base },
};

export const headDim = (c: ModelConfig): number => c.hidden / c.heads;
export const kvWidth = (c: ModelConfig): number => c.kvHeads * headDim(c);

/** One entry per LoRA-targetable module: PEFT name, short name (target_modules) and A/B sizes. */
export interface ModuleSpec {
  name: string;
  short: string;
  kind: 'linear' | 'embedding';
  inFeatures: number;
  outFeatures: number;
}

export function moduleSpecs(c: ModelConfig): ModuleSpec[] {
  const specs: ModuleSpec[] = [
    { name: 'model.embed_tokens', short: 'embed_tokens', kind: 'embedding', inFeatures: c.vocab, outFeatures: c.hidden },
  ];
  const lin = (layer: number, group: string, short: string, inFeatures: number, outFeatures: number): ModuleSpec => ({
    name: `model.layers.${layer}.${group}.${short}`,
    short,
    kind: 'linear',
    inFeatures,
    outFeatures,
  });
  for (let i = 0; i < c.layers; i++) {
    specs.push(
      lin(i, 'self_attn', 'q_proj', c.hidden, c.hidden),
      lin(i, 'self_attn', 'k_proj', c.hidden, kvWidth(c)),
      lin(i, 'self_attn', 'v_proj', c.hidden, kvWidth(c)),
      lin(i, 'self_attn', 'o_proj', c.hidden, c.hidden),
      lin(i, 'mlp', 'gate_proj', c.hidden, c.intermediate),
      lin(i, 'mlp', 'up_proj', c.hidden, c.intermediate),
      lin(i, 'mlp', 'down_proj', c.intermediate, c.hidden),
    );
  }
  specs.push({ name: 'lm_head', short: 'lm_head', kind: 'linear', inFeatures: c.hidden, outFeatures: c.vocab });
  return specs;
}
