import type { FileSource } from '../source.js';
import { memorySource } from '../sources/memory.js';

/**
 * For tests: the package's `memorySource` over files given as text or bytes, counting reads per
 * file (so a test can say how many times a loader asked for one).
 */
export function textFileSource(
  files: Readonly<Record<string, string | Uint8Array>>,
  description = 'memory',
): FileSource & {
  /** Calls to `read` so far by file name, whether the file exists or not. */
  readonly reads: Map<string, number>;
} {
  const encoder = new TextEncoder();
  const bytes = Object.fromEntries(Object.entries(files).map(([name, f]) => [name, typeof f === 'string' ? encoder.encode(f) : f]));
  const inner = memorySource(bytes, description);
  const reads = new Map<string, number>();
  return {
    description,
    reads,
    read(name, options) {
      reads.set(name, (reads.get(name) ?? 0) + 1);
      return inner.read(name, options);
    },
  };
}
