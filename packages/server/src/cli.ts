#!/usr/bin/env node
import { isLoRAError, type LoRAError } from '@lora/core';
import { HELP, isLoopback, parseArgs, UsageError } from './cli/args.js';
import { ApiError, plainMessage } from './http/errors.js';
import { createServing, type Serving } from './node/load.js';
import { type HttpServer, listen } from './node/serve.js';

/**
 * `lora-serve` (`npm run serve`): listens first, answering 503 while the model loads, then serves
 * the app; SIGTERM/SIGINT drain in-flight requests (new ones get 503) and exit 0. Mistakes in the
 * flags or the model are one line on stderr and exit status 2, without a stack trace; an engine
 * stopped by a backend failure is one line and exit status 1.
 */
async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2), process.env);
  if (opts.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const log = (line: string) => process.stderr.write(`lora-serve: ${line}\n`);
  if (!isLoopback(opts.host) && opts.apiKey === undefined) {
    log(`warning: listening on ${opts.host} without --api-key: anyone who can reach this address can use the server`);
  }
  let http: HttpServer;
  try {
    http = await listen(undefined, { host: opts.host, port: opts.port });
  } catch (err) {
    throw new UsageError(`cannot listen on ${opts.host}:${opts.port}: ${(err as Error).message}`);
  }
  let serving: Serving | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (signal: string) => {
    if (stopping) {
      log(`${signal} again: aborting the requests in flight`);
      void serving?.engine.close();
      return;
    }
    log(`${signal}: draining (new requests get 503; up to ${opts.drainTimeout} s for those in flight)`);
    stopping = (async () => {
      const { aborted } = await http.shutdown({ graceMs: opts.drainTimeout * 1000 });
      if (aborted > 0) log(`aborted ${aborted} request(s) still running after ${opts.drainTimeout} s`);
      await serving?.dispose();
      log('stopped');
      process.exit(0);
    })();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // vLLM's api_server exits on EngineDeadError (unless told to keep alive): every request would fail from then on.
  const onEngineFailure = (error: LoRAError) => {
    log(`${plainMessage(error)}; exiting with status 1 so that a supervisor restarts the server`);
    stopping ??= http.shutdown({ graceMs: 1_000 }).then(() => process.exit(1));
  };
  try {
    serving = await createServing({ ...opts, log, onEngineFailure });
  } catch (err) {
    http.server.close();
    http.server.closeAllConnections();
    throw err;
  }
  http.setApp(serving.app);
  const { models } = serving.app;
  log(`serving ${models.baseModel} with ${models.adapters.length} adapter(s) [${models.adapters.join(', ')}]`);
  // Tests and scripts read this line to learn the port (with --port 0).
  log(`listening on ${http.url}`);
  return -1;
}

main().then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err) => {
    if (err instanceof UsageError || err instanceof ApiError || isLoRAError(err)) {
      process.stderr.write(`lora-serve: ${err.message.replace(/^\[E_[A-Z_]+\] /, '')}\n`);
      process.exit(2);
    }
    // Never rethrown: tfjs-backend-wasm's emscripten module turns unhandled rejections into a dump of its own source.
    process.stderr.write(`lora-serve: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
