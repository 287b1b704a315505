import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

// Full collections before a baseline, so that it counts live memory only. Two: V8 may sweep array
// buffers concurrently after a collection, and finishes that before the next one.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Collects garbage (twice, see above). */
function collectGarbage(): void {
  gc();
  gc();
}

/**
 * Peak process memory above a baseline taken after a full collection: resident set size (what
 * the OS sees, garbage not yet collected included) and ArrayBuffer bytes (where typed arrays and
 * file contents live). Sampled on demand and every `intervalMs` while started; synchronous work
 * is only sampled where `sample()` is called, so callers call it at their high-water marks.
 */
export class MemoryPeak {
  readonly #base: NodeJS.MemoryUsage;
  readonly #timer: ReturnType<typeof setInterval>;
  rss = 0;
  arrayBuffers = 0;

  constructor(intervalMs = 5) {
    collectGarbage();
    this.#base = process.memoryUsage();
    this.#timer = setInterval(() => this.sample(), intervalMs);
  }

  sample = (): void => {
    const now = process.memoryUsage();
    this.rss = Math.max(this.rss, now.rss - this.#base.rss);
    this.arrayBuffers = Math.max(this.arrayBuffers, now.arrayBuffers - this.#base.arrayBuffers);
  };

  stop(): void {
    this.sample();
    clearInterval(this.#timer);
  }
}
