import { LoRAError } from '@lora/core';
import { isNode } from '@lora/core/backend';

/**
 * Browsers: downloads kept in Cache Storage, keyed by the URL they came from (a Hub file's resolve
 * URL, a `urlSource` file's URL): the local store between memory and the network. transformers.js does the
 * same (`src/utils/hub.js` `getModelFile`: `caches.open('transformers-cache')`, key = the remote
 * URL), so a page that already loaded a model with transformers.js reuses its files and the other
 * way round.
 */
const CACHE_NAME = 'transformers-cache';

/**
 * The Cache Storage a source keeps its downloads in: the one given, none for `false`, else the
 * browser's `caches` (none in Node, where the Hub source has its disk cache).
 */
export function cacheStorageOf(option: CacheStorage | false | undefined): CacheStorage | undefined {
  return option === false ? undefined : (option ?? (isNode() ? undefined : globalThis.caches));
}

export async function readCached(storage: CacheStorage, key: string, maxBytes: number, what: string): Promise<Uint8Array | undefined> {
  const cache = await storage.open(CACHE_NAME);
  const res = await cache.match(key);
  if (!res) return undefined;
  const declared = Number(res.headers.get('content-length') ?? Number.NaN);
  const tooLarge = (size: number) => new LoRAError('E_FORMAT', `${what} (cached) is ${size} bytes; at most ${maxBytes} are allowed`);
  if (declared > maxBytes) {
    await res.body?.cancel().catch(() => {});
    throw tooLarge(declared);
  }
  const bytes = new Uint8Array(await res.arrayBuffer());
  if (bytes.length > maxBytes) throw tooLarge(bytes.length);
  return bytes;
}

/** Stores a download. A full quota only costs the caching, not the download (transformers.js warns and goes on too). */
export async function writeCached(storage: CacheStorage, key: string, bytes: Uint8Array): Promise<void> {
  try {
    const cache = await storage.open(CACHE_NAME);
    const body = new Uint8Array(bytes); // a copy the Response may own
    await cache.put(
      key,
      new Response(body, { headers: { 'content-length': String(bytes.length), 'content-type': 'application/octet-stream' } }),
    );
  } catch {
    // QuotaExceededError and the like: the file is still returned.
  }
}
