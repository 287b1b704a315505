import { describeValue, LoRAError } from '@lora/core';

/**
 * The greedy next token of each logits row and the gap between its two largest logits: a small gap
 * means float rounding alone could flip the choice, which is how the demo tells a near-tie from a
 * real mismatch. `logits` is `[rows, vocabSize]` as `CausalLM.forward` returns it.
 */
export function greedy(
  logits: Float32Array,
  vocabSize: number,
): {
  /** Per row, the id of the largest logit (the lowest such id on a tie). */
  tokens: number[];
  /** Per row, the largest logit minus the second largest (0 on a tie; Infinity when vocabSize is 1). */
  margins: number[];
} {
  if (!Number.isSafeInteger(vocabSize) || vocabSize < 1 || !(logits instanceof Float32Array) || logits.length % vocabSize !== 0) {
    throw new LoRAError(
      'E_SHAPE',
      `greedy expects [rows, ${describeValue(vocabSize)}] logits as a Float32Array, got ${describeValue(logits)} of length ${describeValue(logits?.length)}`,
    );
  }
  const tokens: number[] = [];
  const margins: number[] = [];
  for (let at = 0; at + vocabSize <= logits.length; at += vocabSize) {
    let best = 0;
    let second = Number.NEGATIVE_INFINITY;
    for (let v = 1; v < vocabSize; v++) {
      const x = logits[at + v] as number;
      if (x > (logits[at + best] as number)) {
        second = logits[at + best] as number;
        best = v;
      } else if (x > second) second = x;
    }
    tokens.push(best);
    margins.push((logits[at + best] as number) - second);
  }
  return { tokens, margins };
}
