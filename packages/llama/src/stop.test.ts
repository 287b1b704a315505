import { describe, expect, it } from 'vitest';
import { DecodeStream } from './detokenize.js';
import { StopStringMatcher } from './stop.js';
import { makeTestTokenizer } from './testing/tokenizer-fixture.js';

/** Runs deltas through a matcher: the text shown, and the stop string found. */
function run(stops: string[], deltas: string[], includeStopString = false) {
  const m = new StopStringMatcher(stops, { includeStopString });
  let text = '';
  for (const delta of deltas) {
    const r = m.push(delta);
    text += r.text;
    if (r.stop) return { text, stop: r.stop };
  }
  return { text: text + m.flush(), stop: undefined };
}

/** The reference: the occurrence that ends first (ties: the one that starts first). */
function reference(stops: string[], text: string) {
  let best: { start: number; end: number; stop: string } | undefined;
  for (const stop of stops) {
    const start = text.indexOf(stop);
    if (start < 0) continue;
    const end = start + stop.length;
    if (!best || end < best.end || (end === best.end && start < best.start)) best = { start, end, stop };
  }
  return best ? { text: text.slice(0, best.start), stop: best.stop } : { text, stop: undefined };
}

function random(seed: number) {
  return () => {
    seed = (seed * 1664525 + 1013904223) >>> 0;
    return seed / 2 ** 32;
  };
}

describe('StopStringMatcher', () => {
  it('finds a stop string split across deltas and returns the text before it', () => {
    expect(run(['###'], ['Hello #', '#', '# and more'])).toEqual({ text: 'Hello ', stop: '###' });
    expect(run(['###'], ['Hello #', '#', '# and more'], true)).toEqual({ text: 'Hello ###', stop: '###' });
  });

  it('holds back a suffix that could start a stop string, and lets it go once it cannot', () => {
    const m = new StopStringMatcher(['STOP']);
    expect(m.push('the ST')).toEqual({ text: 'the ', stop: undefined });
    expect(m.push('O')).toEqual({ text: '', stop: undefined });
    expect(m.push('RM is over')).toEqual({ text: 'STORM is over', stop: undefined });
    expect(m.push(' S')).toEqual({ text: ' ', stop: undefined });
    expect(m.flush()).toBe('S');
  });

  it('ends at the stop string completed first', () => {
    expect(run(['bcd', 'abcdef'], ['abcdef'])).toEqual({ text: 'a', stop: 'bcd' });
    expect(run(['ab', 'abc'], ['xabc'])).toEqual({ text: 'x', stop: 'ab' });
    expect(run(['c d', 'b c'], ['a', ' b ', 'c d'])).toEqual({ text: 'a ', stop: 'b c' });
  });

  it('gives the same result however the text is cut into deltas', () => {
    const next = random(7);
    const alphabet = 'ab c🙂';
    for (let trial = 0; trial < 500; trial++) {
      const chars = Array.from({ length: 1 + Math.floor(next() * 30) }, () => alphabet[Math.floor(next() * alphabet.length)] ?? 'a');
      const text = chars.join('');
      const stops = Array.from({ length: 1 + Math.floor(next() * 3) }, () => {
        const start = Math.floor(next() * chars.length);
        return chars.slice(start, start + 1 + Math.floor(next() * 4)).join('') || 'a';
      });
      const deltas: string[] = [];
      for (let at = 0; at < chars.length; ) {
        const n = Math.floor(next() * 4);
        deltas.push(chars.slice(at, at + n).join(''));
        at += n;
      }
      expect(run(stops, deltas), JSON.stringify({ stops, deltas })).toEqual(reference(stops, text));
    }
  });

  it('stops on a stop string spread over several tokens of a real tokenizer', () => {
    const tok = makeTestTokenizer();
    const text = 'The answer is 42. Stop here. END END';
    const ids = tok.encode(text);
    const stopTokens = tok.encode('Stop here', { addSpecialTokens: false });
    expect(stopTokens.length).toBeGreaterThan(2);
    const detok = new DecodeStream(tok);
    const m = new StopStringMatcher(['Stop here', 'never']);
    let shown = '';
    let used = 0;
    for (const id of ids) {
      used++;
      const r = m.push(detok.push(id));
      shown += r.text;
      if (r.stop) break;
    }
    expect(shown).toBe('The answer is 42. ');
    expect(m.stop).toBe('Stop here');
    expect(tok.decode(ids.slice(0, used))).toMatch(/Stop here$/);
    expect(m.push('more')).toEqual({ text: '', stop: 'Stop here' });
  });

  it('refuses stop strings that are not non-empty strings', () => {
    expect(() => new StopStringMatcher(['ok', ''])).toThrow(/stop strings must be a list of non-empty strings, got \["ok", ""\]/);
    expect(() => new StopStringMatcher('x' as never)).toThrow(/E_CONFIG/);
  });
});
