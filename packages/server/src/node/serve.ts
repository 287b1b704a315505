import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdaptorServer } from '@hono/node-server';
import type { LoraApp } from '../app.js';
import { ApiError } from '../http/errors.js';

/** Where and how {@link listen} serves (`lora-serve`'s `--host` and `--port`). */
export interface ListenOptions {
  /** Default 127.0.0.1: reachable from this machine only, like `vllm serve`'s advice for unauthenticated servers. */
  readonly host?: string;
  /** Default 8000 (vLLM's); 0 picks a free port. */
  readonly port?: number;
  /**
   * How long an idle keep-alive connection stays open (default 65 s; Node's own default is 5 s).
   * A proxy in front (Envoy under the Gateway API Inference Extension) keeps its upstream
   * connections for reuse: the server must not close them sooner than the proxy expects, or a
   * request sent on a connection that the server is closing fails.
   */
  readonly keepAliveTimeoutMs?: number;
}

/** A listening server from {@link listen}: its address, and the app swap and graceful shutdown. */
export interface HttpServer {
  /** The Node `http.Server` underneath; closing it directly skips the draining that `shutdown` does. */
  readonly server: Server;
  /** The address bound ({@link ListenOptions.host}; default 127.0.0.1). */
  readonly host: string;
  /** The port bound: the one asked for, or the one the OS picked for port 0. */
  readonly port: number;
  /** http://host:port */
  readonly url: string;
  /** Starts answering with the app (before that, every request is 503 "loading"). */
  setApp(app: LoraApp): void;
  /**
   * Graceful shutdown: new requests get 503 at once; requests in flight get up to `graceMs` to
   * finish; then those left are aborted (`engine.close()`, streams end with finish_reason
   * "abort") and the server closes. Resolves with the number of requests aborted.
   */
  shutdown(options?: { graceMs?: number }): Promise<{
    /** Requests still in flight when the grace period ended, aborted through `engine.close()` (0 if all finished). */
    aborted: number;
  }>;
}

const loading = () =>
  new ApiError(503, 'the server is loading its model; try again shortly', {
    code: 'unavailable',
    headers: { 'retry-after': '1' },
  }).response();

const timeout = (ms: number) => new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), ms).unref());

/**
 * Serves a LoraApp over HTTP/1.1 on Node through `@hono/node-server`, whose Request carries an
 * AbortSignal that fires when the client closes the connection and which cancels a streamed body
 * when the socket closes: both abort the request in the engine.
 */
export async function listen(app: LoraApp | undefined, options: ListenOptions = {}): Promise<HttpServer> {
  let current = app;
  const server = createAdaptorServer({ fetch: (request: Request) => (current ? current.fetch(request) : loading()) }) as Server;
  const host = options.host ?? '127.0.0.1';
  server.keepAliveTimeout = options.keepAliveTimeoutMs ?? 65_000;
  // Node requires headersTimeout > keepAliveTimeout, else a reused connection can be cut while its headers arrive.
  server.headersTimeout = Math.max(server.headersTimeout, server.keepAliveTimeout + 1_000);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8000, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  let shutdown: Promise<{ aborted: number }> | undefined;
  return {
    server,
    host,
    port,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    setApp(next) {
      current = next;
    },
    shutdown({ graceMs = 30_000 } = {}) {
      shutdown ??= (async () => {
        let aborted = 0;
        if (current !== undefined) {
          current.startDraining();
          if ((await Promise.race([current.idle().then(() => 'idle' as const), timeout(graceMs)])) === 'timeout') {
            aborted = current.inFlight;
            await current.engine.close();
            await Promise.race([current.idle(), timeout(2_000)]);
          }
        }
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        return { aborted };
      })();
      return shutdown;
    },
  };
}
