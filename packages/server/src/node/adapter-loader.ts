import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';
import { LoRAError } from '@lora/core';
import { type AdapterDirJob, type AdapterDirResult, readAdapterDir } from './adapter-dir.js';
import { type AdapterDirMessage, unpackMessage } from './adapter-message.js';

/**
 * Reads adapter directories for the server (`--lora-root` loads, `--adapters` directories, reloads
 * after the host cache evicted an adapter), each read off the thread that runs engine steps.
 */
export interface AdapterLoader {
  /** Reads, parses and checks one adapter directory (see `readAdapterDir`). */
  load(job: AdapterDirJob): Promise<AdapterDirResult>;
  /** Loader threads running now (0: loads run on the main thread). */
  readonly workers: number;
  /** Resolves once every thread has started (or failed to, its loads then on the others or the main thread). */
  ready(): Promise<void>;
  /** Loads being read in a thread now (at most `workers`), and loads queued behind them. */
  readonly running: number;
  readonly queued: number;
  /** Stops the threads; loads queued or running fail with E_DISPOSED. */
  close(): Promise<void>;
}

export interface AdapterLoaderOptions {
  /**
   * Worker threads reading adapters (`--lora-load-workers`, default 1): also how many loads run at
   * once, the rest wait in order. 0 reads on the main thread, between engine steps.
   */
  readonly workers?: number;
  /** Told when the threads cannot start or one stops (loads then run on the others, or on the main thread). */
  readonly log?: (line: string) => void;
}

interface Pending {
  readonly job: AdapterDirJob;
  readonly resolve: (r: AdapterDirResult) => void;
  readonly reject: (err: unknown) => void;
}

interface Thread {
  readonly worker: Worker;
  ready: boolean;
  running: (Pending & { readonly seq: number }) | undefined;
}

const MAX_WORKERS = 64;

/** How to start the worker whose entry sits beside this module: `.js`/`.cjs` from the build, `.ts` from source. */
function workerEntry(): { code: string | URL; options: WorkerOptions } {
  const here = import.meta.url;
  const ext = here.slice(here.lastIndexOf('.'));
  const url = new URL(`./adapter-load-worker${ext}`, here);
  if (ext !== '.ts') return { code: url, options: {} };
  // Development (tests, `npm run serve`): the worker registers tsx's ESM hooks itself, then imports
  // its TypeScript entry and @lora/core from source — on Node 20, hooks from `--import` in a
  // worker's execArgv are not applied to its entry. (tsx's ESM api is the .mjs beside the .cjs that require finds.)
  const tsxApi = pathToFileURL(
    createRequire(here)
      .resolve('tsx/esm/api')
      .replace(/\.cjs$/, '.mjs'),
  ).href;
  const code = `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); })`;
  return { code, options: { eval: true, execArgv: ['--conditions=@lora/source'] } };
}

/**
 * A pool of adapter-load threads (Node `worker_threads`). A cold adapter's files are opened,
 * read, parsed and converted there while the main thread keeps running engine steps (on a
 * machine with a core to spare, at the same time); its weights come back in one message, moved
 * not copied, so a load costs the main thread one wait for the current step instead of one per
 * file operation, plus core's check of the weights (`createAdapter`). Loads are queued in order
 * and at most `workers` run at once (issue #22: bounded load concurrency). When the threads
 * cannot start — a bundle that left the worker file behind, a runtime without worker threads —
 * or every one stopped, loads run on the main thread and `log` says so: slower, never wrong.
 */
export function createAdapterLoader(options: AdapterLoaderOptions = {}): AdapterLoader {
  const count = options.workers ?? 1;
  if (!Number.isSafeInteger(count) || count < 0 || count > MAX_WORKERS) {
    throw new LoRAError('E_CONFIG', `workers (--lora-load-workers) must be an integer from 0 to ${MAX_WORKERS}, got ${String(count)}`);
  }
  const queue: Pending[] = [];
  const threads = new Set<Thread>();
  let seq = 0;
  let closed = false;

  const onMainThread = (p: Pending) => readAdapterDir(p.job).then(p.resolve, p.reject);
  const waiting: (() => void)[] = [];
  const started = () => [...threads].every((t) => t.ready);
  const pump = () => {
    if (started()) for (const wake of waiting.splice(0)) wake();
    for (const t of threads) {
      if (!t.ready || t.running !== undefined) continue;
      const next = queue.shift();
      if (next === undefined) return;
      t.running = { ...next, seq: ++seq };
      // Held only while it works: an idle loader never keeps the process alive.
      t.worker.ref();
      t.worker.postMessage({ seq: t.running.seq, job: next.job });
    }
    // Every thread gone: what waits runs here.
    if (threads.size === 0) for (const p of queue.splice(0)) void onMainThread(p);
  };
  const lose = (t: Thread, why: string) => {
    if (!threads.delete(t)) return;
    if (t.running !== undefined) {
      t.running.reject(new LoRAError('E_FORMAT', `the adapter-load thread stopped while it read ${t.running.job.source}: ${why}`));
    }
    if (!closed) {
      options.log?.(
        `an adapter-load thread stopped (${why}); ${threads.size > 0 ? 'the others go on' : 'adapters load on the main thread'}`,
      );
    }
    pump();
  };

  const spawn = (entry: ReturnType<typeof workerEntry>) => {
    const worker = new Worker(entry.code, entry.options);
    worker.unref();
    const t: Thread = { worker, ready: false, running: undefined };
    threads.add(t);
    worker.on('message', (m: { ready: true } | { seq: number; message: AdapterDirMessage }) => {
      if ('ready' in m) {
        t.ready = true;
      } else if (t.running !== undefined && t.running.seq === m.seq) {
        const { job, resolve, reject } = t.running;
        t.running = undefined;
        worker.unref();
        try {
          resolve(unpackMessage(m.message, job.id));
        } catch (err) {
          reject(err);
        }
      }
      pump();
    });
    worker.on('error', (err) => lose(t, err.message));
    worker.on('exit', (code) => lose(t, `exit code ${code}`));
  };
  if (count > 0) {
    try {
      const entry = workerEntry();
      for (let i = 0; i < count; i++) spawn(entry);
    } catch (err) {
      options.log?.(`adapter-load threads unavailable (${(err as Error).message}); adapters load on the main thread`);
    }
  }

  return {
    load(job) {
      if (closed) return Promise.reject(new LoRAError('E_DISPOSED', 'the adapter loader was closed'));
      return new Promise<AdapterDirResult>((resolve, reject) => {
        queue.push({ job, resolve, reject });
        pump();
      });
    },
    get workers() {
      return threads.size;
    },
    ready() {
      return started() ? Promise.resolve() : new Promise<void>((resolve) => waiting.push(resolve));
    },
    get running() {
      let n = 0;
      for (const t of threads) if (t.running !== undefined) n++;
      return n;
    },
    get queued() {
      return queue.length;
    },
    async close() {
      closed = true;
      const disposed = new LoRAError('E_DISPOSED', 'the adapter loader was closed');
      for (const p of queue.splice(0)) p.reject(disposed);
      const all = [...threads];
      threads.clear();
      for (const wake of waiting.splice(0)) wake();
      for (const t of all) t.running?.reject(disposed);
      await Promise.all(all.map((t) => t.worker.terminate()));
    },
  };
}
