import type { Engine } from '@lora/llama';
import type { ServerMetrics } from './metrics.js';
import type { ServedModels } from './models.js';

/** Requests being answered (a stream counts until its last byte): what draining waits for. */
export class InFlight {
  #count = 0;
  #waiters: (() => void)[] = [];

  get count(): number {
    return this.#count;
  }

  /** Counts one request; the function returned ends it (calling it again does nothing). */
  begin(): () => void {
    this.#count++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      if (--this.#count === 0) for (const w of this.#waiters.splice(0)) w();
    };
  }

  idle(): Promise<void> {
    return this.#count === 0 ? Promise.resolve() : new Promise((resolve) => this.#waiters.push(resolve));
  }
}

/** What the route handlers share. */
export interface ServerContext {
  readonly engine: Engine;
  readonly models: ServedModels;
  readonly metrics: ServerMetrics | undefined;
  readonly inFlight: InFlight;
  readonly maxBodyBytes: number;
  /** Seconds a client is told to wait (`Retry-After`) when the queue is full. */
  readonly retryAfterSeconds: number;
  draining(): boolean;
}
