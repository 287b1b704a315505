/**
 * A tiny byte-pair-encoding trainer for test fixtures: enough to produce a real `tokenizer.json`
 * (vocab + ranked merges) from a few sentences, deterministically, without the Rust trainer.
 * It follows the classic algorithm (Sennrich et al.; tokenizers `models/bpe/trainer.rs`): count
 * adjacent symbol pairs weighted by word frequency, merge the most frequent pair everywhere, repeat.
 */

/**
 * GPT-2's byte <-> printable-character table (openai/gpt-2 `encoder.py` `bytes_to_unicode`), the
 * alphabet of every ByteLevel tokenizer: printable Latin-1 bytes map to themselves, the other 68
 * bytes to U+0100 and up, so that a token is always a printable string (space is `Ġ`, newline `Ċ`).
 */
export function bytesToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const table = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) table[b] = String.fromCharCode(printable.includes(b) ? b : 256 + extra++);
  return table;
}

export interface TrainedBpe {
  /** Symbols created by merges, in merge order. */
  readonly tokens: string[];
  /** `"left right"` pairs, highest priority first (the HF `merges` list). */
  readonly merges: string[];
}

/** Learns up to `maxMerges` merges over words given as symbol arrays with counts. */
export function trainBpe(words: Map<string, { symbols: string[]; count: number }>, maxMerges: number): TrainedBpe {
  const entries = [...words.values()].map((w) => ({ symbols: [...w.symbols], count: w.count }));
  const tokens: string[] = [];
  const merges: string[] = [];
  const known = new Set(entries.flatMap((e) => e.symbols));
  while (merges.length < maxMerges) {
    const pairs = new Map<string, number>();
    for (const { symbols, count } of entries) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const key = `${symbols[i]} ${symbols[i + 1]}`;
        pairs.set(key, (pairs.get(key) ?? 0) + count);
      }
    }
    let best: string | undefined;
    let bestCount = 0;
    for (const [key, count] of pairs) {
      // Ties go to the lexicographically smaller pair so that the fixture is the same on every run.
      if (count > bestCount || (count === bestCount && best !== undefined && key < best)) {
        best = key;
        bestCount = count;
      }
    }
    if (best === undefined) break;
    const [left, right] = best.split(' ') as [string, string];
    const merged = left + right;
    for (const entry of entries) {
      const out: string[] = [];
      for (let i = 0; i < entry.symbols.length; i++) {
        if (i + 1 < entry.symbols.length && entry.symbols[i] === left && entry.symbols[i + 1] === right) {
          out.push(merged);
          i++;
        } else out.push(entry.symbols[i] as string);
      }
      entry.symbols = out;
    }
    merges.push(best);
    if (!known.has(merged)) {
      known.add(merged);
      tokens.push(merged);
    }
  }
  return { tokens, merges };
}
