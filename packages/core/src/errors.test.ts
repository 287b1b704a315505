import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { describeValue, isLoRAError, LoRAError } from './errors.js';

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

describe('LoRAError across copies of core', () => {
  it('is recognised by instanceof and isLoRAError when another copy of the class made it (ESM and CJS builds)', () => {
    // What a second copy of the class leaves on its instances: the shared brand, not this prototype.
    const fromOtherCopy = Object.assign(new Error('[E_SHAPE] x'), { code: 'E_SHAPE' });
    Object.defineProperty(fromOtherCopy, Symbol.for('@lora/core/LoRAError'), { value: true });
    expect(fromOtherCopy instanceof LoRAError).toBe(true);
    expect(isLoRAError(fromOtherCopy, 'E_SHAPE')).toBe(true);
    expect(new LoRAError('E_CONFIG', 'y') instanceof LoRAError).toBe(true);
    expect(new Error('z') instanceof LoRAError).toBe(false);
    expect(isLoRAError({ code: 'E_SHAPE' })).toBe(false);
    expect(isLoRAError(null)).toBe(false);
  });

  it('keeps instanceof of subclasses to their own instances', () => {
    class QueueFull extends LoRAError {}
    expect(new QueueFull('E_CAPACITY', 'full') instanceof QueueFull).toBe(true);
    expect(new QueueFull('E_CAPACITY', 'full') instanceof LoRAError).toBe(true);
    expect(new LoRAError('E_CAPACITY', 'other') instanceof QueueFull).toBe(false);
  });
});
