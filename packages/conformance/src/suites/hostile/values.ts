/**
 * Values a hostile or buggy caller passes: arrays that answer differently on each read, lie about
 * their length or throw, and objects whose getters throw. Each maker also says what a runtime that
 * reads its input exactly once (as the contract requires) sees, so the model can predict the result.
 */

export interface Hostile<T> {
  readonly value: T;
  /** What one read of each element gives, or undefined if reading fails (throws, or the length is a lie). */
  readonly seen: readonly unknown[] | undefined;
  /** The array claims more entries than any runtime takes. */
  readonly tooLong: boolean;
}

export const plain = <T>(items: readonly T[]): Hostile<T[]> => ({ value: [...items], seen: items, tooLong: false });

/** An array whose element i is `first[i]` on the first read and `later[i]` after. */
export function mutating<T>(first: readonly T[], later: readonly T[]): Hostile<T[]> {
  const reads = new Map<number, number>();
  const value = new Proxy([...first], {
    get(target, key, receiver) {
      if (typeof key === 'string' && /^\d+$/.test(key)) {
        const i = Number(key);
        const n = reads.get(i) ?? 0;
        reads.set(i, n + 1);
        return n === 0 ? first[i] : later[i];
      }
      return Reflect.get(target, key, receiver);
    },
  });
  return { value, seen: first, tooLong: false };
}

/** An array that claims `length` entries (a billion, say) and holds none. */
export function lyingLength<T>(length: number): Hostile<T[]> {
  const value = new Proxy([] as T[], {
    get(target, key, receiver) {
      if (key === 'length') return length;
      return Reflect.get(target, key, receiver);
    },
  });
  return { value, seen: undefined, tooLong: true };
}

/** An array whose elements throw when read. */
export function throwing<T>(length: number): Hostile<T[]> {
  const value = new Proxy(new Array(length).fill(0) as T[], {
    get(target, key, receiver) {
      if (typeof key === 'string' && /^\d+$/.test(key)) throw new TypeError(`element ${key} is not readable`);
      return Reflect.get(target, key, receiver);
    },
  });
  return { value, seen: undefined, tooLong: false };
}

/** An object whose every property read throws. */
export function throwingObject<T extends object>(): T {
  return new Proxy({} as T, {
    get() {
      throw new TypeError('property read refused');
    },
  });
}

export const HUGE_STRING = 'x'.repeat(1_000_000);
