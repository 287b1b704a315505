/**
 * The adapter-load worker's entry (see `adapter-loader.ts`): reads, parses and checks one PEFT
 * adapter directory per message, on its own thread, and posts the result back with its weights
 * transferred. One job at a time: the pool bounds how many loads run at once.
 */
import { parentPort } from 'node:worker_threads';
import { type AdapterDirJob, readAdapterDir } from './adapter-dir.js';
import { packError, packResult } from './adapter-message.js';

const port = parentPort;
if (port === null) throw new Error('adapter-load-worker.ts runs as a worker thread (adapter-loader.ts starts it)');
port.on('message', async ({ seq, job }: { seq: number; job: AdapterDirJob }) => {
  try {
    const { message, transfer } = packResult(await readAdapterDir(job));
    port.postMessage({ seq, message }, transfer);
  } catch (err) {
    port.postMessage({ seq, message: packError(err) });
  }
});
port.postMessage({ ready: true });
