import type { ModelConfig } from './config.js';

/**
 * Rotary position embeddings as transformers computes them, float32 step by step (`f` rounds to
 * float32 where torch would), so that the angles match its `LlamaRotaryEmbedding` to the last bit
 * up to the cos/sin library rounding.
 */

const f = Math.fround;

/**
 * `inv_freq[i]` for i < head_dim / 2. transformers `modeling_rope_utils.py`
 * `_compute_default_rope_parameters`: `1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))`,
 * then for `rope_type` "llama3" `_compute_llama3_parameters`: low frequencies (wavelength above
 * `original_max_position_embeddings / low_freq_factor`) divided by `factor`, high frequencies
 * (wavelength below `original / high_freq_factor`) kept, and the band between interpolated.
 * `attention_factor` is 1 for both types, so cos and sin are not rescaled.
 */
export function inverseFrequencies(c: ModelConfig): Float32Array {
  const dim = c.headDim;
  const base = f(c.ropeTheta);
  const inv = Float32Array.from({ length: dim / 2 }, (_, i) => f(1 / f(base ** f((2 * i) / dim))));
  const s = c.ropeScaling;
  if (s === null) return inv;
  const factor = f(s.factor);
  const oldContext = s.originalMaxPositionEmbeddings;
  // Python floats, compared with (and subtracted from) float32 tensors: torch rounds them to float32.
  const lowFreqWavelen = f(oldContext / s.lowFreqFactor);
  const highFreqWavelen = f(oldContext / s.highFreqFactor);
  const low = f(s.lowFreqFactor);
  const twoPi = f(2 * Math.PI);
  return inv.map((freq) => {
    // torch evaluates `scalar / tensor` as `tensor.reciprocal() * scalar`.
    const wavelen = f(f(1 / freq) * twoPi);
    if (wavelen < highFreqWavelen) return freq;
    if (wavelen > lowFreqWavelen) return f(freq / factor);
    const smooth = f(f(f(f(1 / wavelen) * oldContext) - low) / f(s.highFreqFactor - s.lowFreqFactor));
    return f(f(f(f(1 - smooth) * freq) / factor) + f(smooth * freq));
  });
}

/**
 * cos and sin of `position × inv_freq` for each position, `[positions, head_dim / 2]` each
 * (transformers repeats the half, `torch.cat((freqs, freqs))`; rotate-half reads it once per half).
 * Computed per step for the positions in the batch: no table of max_position_embeddings rows.
 */
export function rotaryAngles(invFreq: Float32Array, positions: ArrayLike<number>): { cos: Float32Array; sin: Float32Array } {
  const half = invFreq.length;
  const cos = new Float32Array(positions.length * half);
  const sin = new Float32Array(positions.length * half);
  for (let t = 0; t < positions.length; t++) {
    const p = positions[t] as number;
    for (let i = 0; i < half; i++) {
      // `inv_freq @ position_ids` in float32: one rounded product per angle.
      const angle = f((invFreq[i] as number) * p);
      cos[t * half + i] = Math.cos(angle);
      sin[t * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}
