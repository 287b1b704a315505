import { describe, expect, it } from 'vitest';
import { DecodeStream } from './detokenize.js';
import { bytesToUnicode } from './testing/bpe.js';
import { makeTestTokenizer, type TestTokenizerStyle } from './testing/tokenizer-fixture.js';

const TEXTS = [
  'Hello world! How are you today?',
  'café naïve — 日本語のテキスト, 你好，世界。',
  'emoji the vocab knows 🙂👋🎉 and ones it does not 🦙🧪👋🏽 𝔘𝔫𝔦',
  '  spaces,\n\nnewlines\tand tabs  ',
];

function stream(ids: number[], s: DecodeStream): string[] {
  const deltas = ids.map((id) => s.push(id));
  deltas.push(s.flush());
  return deltas;
}

describe('DecodeStream', () => {
  for (const style of ['smollm2', 'llama3', 'llama2'] as TestTokenizerStyle[]) {
    const tok = makeTestTokenizer({ style });

    it(`${style}: the deltas add up to the full decode and never hold a broken character`, () => {
      for (const text of TEXTS) {
        for (const skipSpecialTokens of [true, false]) {
          const ids = tok.encode(text);
          const deltas = stream(ids, new DecodeStream(tok, { skipSpecialTokens }));
          expect(deltas.join('')).toBe(tok.decode(ids, { skipSpecialTokens, cleanUpTokenizationSpaces: false }));
          expect(deltas.some((d) => d.includes('\uFFFD'))).toBe(false);
          // Valid text is let out as soon as each character is complete: nothing is left for flush.
          expect(deltas.at(-1)).toBe('');
        }
      }
    });
  }

  it('holds back the bytes of a character split over tokens until it is complete', () => {
    const tok = makeTestTokenizer();
    const ids = tok.encode('a🦙b');
    const pieces = ids.map((id) => tok.idToToken(id));
    // 🦙 is F0 9F A6 99: the fixture's vocabulary has no token for it, so it spans several tokens.
    expect(ids.length).toBeGreaterThan(3);
    const s = new DecodeStream(tok);
    const deltas = ids.map((id) => s.push(id));
    expect(deltas.join('')).toBe('a🦙b');
    expect(deltas.filter((d) => d !== '')).toEqual(['a', '🦙', 'b']);
    expect(pieces.length).toBe(deltas.length);
  });

  it('decodes the first generated tokens in the context of the prompt (SentencePiece drops a leading space)', () => {
    const tok = makeTestTokenizer({ style: 'llama2' });
    const ids = tok.encode('Hello world, the capital of France', { addSpecialTokens: false });
    // Cut the text before a word, i.e. before a token that starts with ▁ (a space).
    const cut = ids.findIndex((id, i) => i > 1 && tok.idToToken(id)?.startsWith('▁'));
    expect(cut).toBeGreaterThan(1);
    const full = tok.decode(ids);
    const promptText = tok.decode(ids.slice(0, cut));
    const withPrompt = stream(ids.slice(cut), new DecodeStream(tok, { promptIds: ids.slice(0, cut) })).join('');
    expect(withPrompt).toBe(full.slice(promptText.length));
    expect(withPrompt.startsWith(' ')).toBe(true);
    // Without the prompt the first token is decoded as the start of a text.
    expect(stream(ids.slice(cut), new DecodeStream(tok)).join('')).toBe(withPrompt.trimStart());
  });

  it('lets invalid bytes out as U+FFFD instead of waiting forever', () => {
    const tok = makeTestTokenizer();
    const continuation = tok.tokenToId(bytesToUnicode()[0x80] as string) as number;
    const s = new DecodeStream(tok);
    const deltas = Array.from({ length: 40 }, () => s.push(continuation));
    expect(deltas.join('') + s.flush()).toBe('\uFFFD'.repeat(40));
    expect(deltas.filter((d) => d !== '').length).toBeGreaterThan(1);
    // Followed by text, a stray byte is let out with it.
    const t = new DecodeStream(tok);
    expect([continuation, ...tok.encode('ok')].map((id) => t.push(id)).join('')).toBe('\uFFFDok');
  });

  it('refuses what is not a token id', () => {
    const tok = makeTestTokenizer();
    expect(() => new DecodeStream(tok).push(-1)).toThrow(/DecodeStream: token id must be a non-negative integer, got -1/);
    expect(() => new DecodeStream({} as never)).toThrow(/DecodeStream needs a Tokenizer/);
  });
});
