/**
 * Activated LoRA (PEFT `alora_invocation_tokens`; PEFT `lora/variants.py` `calculate_alora_offsets`):
 * the adapter applies from the start of the *last* occurrence of its invocation tokens in the
 * prompt on. Knuth–Morris–Pratt over the reversed sequences finds that occurrence in
 * O(prompt + invocation) whatever the tokens (a naive scan is O(prompt × invocation) on repeats).
 */

/** Index in `tokens` where the last occurrence of `pattern` starts, or -1. */
export function lastOccurrence(tokens: ArrayLike<number>, pattern: readonly number[]): number {
  const n = tokens.length;
  const k = pattern.length;
  if (k === 0 || k > n) return -1;
  // Failure function of the reversed pattern.
  const rev = (i: number) => pattern[k - 1 - i] as number;
  const fail = new Int32Array(k);
  for (let i = 1, j = 0; i < k; i++) {
    while (j > 0 && rev(i) !== rev(j)) j = fail[j - 1] as number;
    if (rev(i) === rev(j)) j++;
    fail[i] = j;
  }
  // Scan the prompt from its end: the first full match is the last occurrence.
  for (let i = n - 1, j = 0; i >= 0; i--) {
    const t = tokens[i] as number;
    while (j > 0 && t !== rev(j)) j = fail[j - 1] as number;
    if (t === rev(j)) j++;
    if (j === k) return i;
  }
  return -1;
}

/**
 * The first position of a sequence that gets the adapter: 0 for a plain adapter; for an activated
 * LoRA the start of the last invocation in the prompt, or Infinity when the prompt has none (the
 * base model throughout, as PEFT does).
 */
export function adapterStart(promptIds: ArrayLike<number>, invocationTokens: readonly number[] | undefined): number {
  if (invocationTokens === undefined) return 0;
  const at = lastOccurrence(promptIds, invocationTokens);
  return at < 0 ? Number.POSITIVE_INFINITY : at;
}
