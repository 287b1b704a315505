import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { describeValue } from './errors.js';

describe('describeValue', () => {
  it('names what it was given', () => {
    expect(describeValue([1, 'a', null])).toBe('[1, "a", null]');
    expect(describeValue({ shape: [2, 3] })).toBe('tensor of shape [2, 3]');
    expect(describeValue(new Map())).toBe('Map');
    expect(describeValue({})).toBe('object');
    expect(describeValue(Number.NaN)).toBe('NaN');
  });

  it('never throws, whatever a parsed file contains (fast-check)', () => {
    expect(describeValue([{ toString: 0 }])).toBe('[object]');
    fc.assert(
      fc.property(fc.anything({ withBigInt: true, withMap: true, withSet: true, withNullPrototype: true, withTypedArray: true }), (v) => {
        expect(typeof describeValue(v)).toBe('string');
      }),
      { numRuns: 2000 },
    );
  });
});
