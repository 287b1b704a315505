import { describeValue, LoRAError } from '@lora/core';
import { cacheStorageOf, readCached, writeCached } from '../browser-cache.js';
import type { FileSource, ReadOptions } from '../source.js';
import { checkFileName, checkSize } from './names.js';

/** How {@link urlSource} makes its requests: the fetch to call and headers to send with each GET. */
export interface UrlSourceOptions {
  /** The fetch to use (default: the global one). */
  readonly fetch?: typeof fetch;
  /** Extra request headers, e.g. `{ authorization: 'Bearer …' }`. */
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * Browsers: the Cache Storage that keeps each downloaded file under its URL (default `caches`, as
   * `hubSource` and transformers.js do), so a page loads an adapter over the network once; a file
   * is taken from there without asking the server again — pass false when the URL's content changes.
   */
  readonly cacheStorage?: CacheStorage | false;
}

/**
 * A `FileSource` over an http(s) base URL: `read('config.json')` fetches `<base>/config.json`.
 * Bodies are streamed: progress is reported as chunks arrive and the download stops (and is
 * cancelled) as soon as it passes `maxBytes`, whatever Content-Length claims. HTTP 404 means the
 * file does not exist (undefined); any other failure is E_NOT_FOUND naming the URL and status.
 */
export function urlSource(baseUrl: string, options: UrlSourceOptions = {}): FileSource {
  let base: URL;
  try {
    base = new URL(baseUrl);
  } catch {
    throw new LoRAError('E_CONFIG', `urlSource expects an http(s) URL, got ${describeValue(baseUrl)}`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new LoRAError('E_CONFIG', `urlSource expects an http(s) URL, got ${describeValue(baseUrl)}`);
  }
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  const description = base.href;
  return {
    description,
    async read(name: string, read: ReadOptions): Promise<Uint8Array | undefined> {
      checkFileName(name, description);
      const url = new URL(encodeURIComponent(name), base).href;
      const storage = cacheStorageOf(options.cacheStorage);
      const hit = storage === undefined ? undefined : await readCached(storage, url, read.maxBytes, url);
      if (hit !== undefined) {
        read.onProgress?.({ file: name, loaded: hit.length, total: hit.length });
        return hit;
      }
      const fetchImpl = options.fetch ?? globalThis.fetch;
      let response: Response;
      try {
        response = await fetchImpl(url, { headers: { ...options.headers } });
      } catch (err) {
        throw new LoRAError('E_NOT_FOUND', `cannot fetch ${url}: ${(err as Error)?.message ?? describeValue(err)}`, { cause: err });
      }
      if (response.status === 404) {
        await response.body?.cancel();
        return undefined;
      }
      if (!response.ok) {
        await response.body?.cancel();
        throw new LoRAError('E_NOT_FOUND', `GET ${url} answered HTTP ${response.status} ${response.statusText}`.trim());
      }
      const bytes = await readBody(response, url, name, read);
      if (storage !== undefined) await writeCached(storage, url, bytes);
      return bytes;
    },
  };
}

/** The body, at most `maxBytes`, with progress per chunk. */
async function readBody(response: Response, url: string, name: string, { maxBytes, onProgress }: ReadOptions): Promise<Uint8Array> {
  const header = Number(response.headers.get('content-length'));
  const total = Number.isSafeInteger(header) && header >= 0 ? header : undefined;
  if (total !== undefined && total > maxBytes) {
    await response.body?.cancel();
    checkSize(total, maxBytes, url);
  }
  if (response.body === null) {
    const bytes = new Uint8Array(await response.arrayBuffer());
    checkSize(bytes.byteLength, maxBytes, url);
    onProgress?.({ file: name, loaded: bytes.byteLength, total: bytes.byteLength });
    return bytes;
  }
  // Content-Length sizes the buffer when it is right; a compressed or lying one only costs growth.
  let buffer = new Uint8Array(Math.min(total ?? 1 << 16, maxBytes));
  let loaded = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (loaded + value.byteLength > maxBytes) {
      await reader.cancel();
      checkSize(loaded + value.byteLength, maxBytes, `${url} (still downloading)`);
    }
    if (loaded + value.byteLength > buffer.length) {
      const grown = new Uint8Array(Math.min(maxBytes, Math.max(2 * buffer.length, loaded + value.byteLength)));
      grown.set(buffer.subarray(0, loaded));
      buffer = grown;
    }
    buffer.set(value, loaded);
    loaded += value.byteLength;
    onProgress?.({ file: name, loaded, ...(total !== undefined ? { total } : {}) });
  }
  return loaded === buffer.length ? buffer : buffer.slice(0, loaded);
}
