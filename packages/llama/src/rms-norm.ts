import { add, mean, mul, rsqrt, square, type Tensor1D, type Tensor2D } from '@tensorflow/tfjs-core';

/**
 * transformers `modeling_llama.py` `LlamaRMSNorm` (Mistral and Qwen2 copy it): in float32,
 * `x · rsqrt(mean(x²) + eps)`, then times the weight. tfjs computes in float32 throughout, so the
 * upcast transformers does for half-precision inputs is already the case here.
 */
export function rmsNorm(x: Tensor2D, weight: Tensor1D, eps: number): Tensor2D {
  const variance = mean(square(x), -1, true);
  return mul(weight, mul(x, rsqrt(add(variance, eps)))) as Tensor2D;
}
