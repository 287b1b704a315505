import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../checkpoint.js';
import { buildCheckpoint, CHECKPOINT_PRESETS } from '../fixtures.js';
import type { LoadProgress } from '../source.js';
import { fakeCacheStorage, referenceRuntime } from '../test-support.js';
import { dirSource } from './dir.js';
import { memorySource } from './memory.js';
import { urlSource } from './url.js';

const code = (c: string, message: RegExp) => (e: unknown) => (e as { code?: string }).code === c && message.test((e as Error).message);
const MB = 2 ** 20;

describe('urlSource', () => {
  const checkpoint = buildCheckpoint({ ...CHECKPOINT_PRESETS['llama-untied'], shards: 2 });
  let server: Server;
  let base: string;
  /** Bytes the server managed to write per request path (a cancelled download stops early). */
  const sent = new Map<string, number>();
  const requests: string[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      requests.push(path);
      const name = path.replace(/^\/repo\//, '');
      if (path === '/endless') {
        // No Content-Length, 64 KiB chunks until the client hangs up.
        res.writeHead(200);
        let n = 0;
        const chunk = new Uint8Array(64 * 1024);
        const push = () => {
          while (n < 1024 && res.write(chunk)) n++;
          sent.set(path, n * chunk.length);
          if (n < 1024) res.once('drain', push);
          else res.end();
        };
        res.on('close', () => sent.set(path, n * chunk.length));
        push();
        return;
      }
      if (path === '/lying') {
        res.writeHead(200, { 'content-length': String(10 * MB) });
        res.end(new Uint8Array(16));
        return;
      }
      if (path === '/forbidden/config.json') {
        res.writeHead(403, 'Forbidden').end();
        return;
      }
      const bytes = checkpoint.files[name];
      if (!path.startsWith('/repo/') || bytes === undefined) {
        res.writeHead(404).end();
        return;
      }
      // Chunked transfer (no Content-Length) for the shards, so progress has several steps.
      if (name.endsWith('.safetensors')) {
        res.writeHead(200);
        for (let at = 0; at < bytes.length; at += 4096) res.write(bytes.subarray(at, at + 4096));
        res.end();
      } else res.writeHead(200, { 'content-length': String(bytes.length) }).end(bytes);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('loads a sharded checkpoint from a base URL, streaming with progress, trying model.safetensors first', async () => {
    const runtime = await referenceRuntime();
    const events: LoadProgress[] = [];
    const { model, config } = await loadModel(`${base}/repo`, { runtime, onProgress: (e) => events.push(e) });
    expect(config).toEqual(checkpoint.config);
    expect(requests.filter((r) => r.startsWith('/repo/'))).toEqual([
      '/repo/config.json',
      '/repo/model.safetensors',
      '/repo/model.safetensors.index.json',
      '/repo/model-00001-of-00002.safetensors',
      '/repo/model-00002-of-00002.safetensors',
    ]);
    const shard = events.filter((e) => e.file === 'model-00001-of-00002.safetensors');
    expect(shard.length).toBeGreaterThan(2);
    expect(shard.map((e) => e.loaded)).toEqual([...shard.map((e) => e.loaded)].sort((a, b) => a - b));
    expect(shard.at(-1)?.loaded).toBe(checkpoint.files['model-00001-of-00002.safetensors']?.length);
    model.dispose();
    runtime.dispose();
  });

  it('stops a download as soon as it passes maxBytes, whatever the headers say', async () => {
    const source = urlSource(base);
    await expect(source.read('endless', { maxBytes: MB })).rejects.toSatisfy(
      code('E_FORMAT', /\/endless \(still downloading\) is \d+ bytes; at most maxBytes = 1048576/),
    );
    // The server was cut off long before its 64 MiB.
    await new Promise((r) => setTimeout(r, 50));
    expect(sent.get('/endless') ?? 0).toBeLessThan(32 * MB);
    await expect(source.read('lying', { maxBytes: MB })).rejects.toSatisfy(
      code('E_FORMAT', /\/lying is 10485760 bytes; at most maxBytes = 1048576/),
    );
  });

  it('keeps downloads in Cache Storage by URL (browsers): a second read asks the server nothing; cacheStorage false always downloads', async () => {
    const { storage, stored, names } = fakeCacheStorage();
    const cached = urlSource(`${base}/repo`, { cacheStorage: storage });
    const from = requests.length;
    const first = await cached.read('config.json', { maxBytes: MB });
    const events: LoadProgress[] = [];
    const again = await cached.read('config.json', { maxBytes: MB, onProgress: (e) => events.push(e) });
    expect(again).toEqual(first);
    expect(events.map((e) => [e.loaded, e.total])).toEqual([[first?.length, first?.length]]);
    expect(requests.slice(from)).toEqual(['/repo/config.json']);
    expect([...stored.keys()]).toEqual([`${base}/repo/config.json`]);
    expect(new Set(names)).toEqual(new Set(['transformers-cache']));
    // A cached file larger than this read allows is refused like a download would be.
    await expect(cached.read('config.json', { maxBytes: 8 })).rejects.toSatisfy(code('E_FORMAT', /config\.json \(cached\) is \d+ bytes/));
    await urlSource(`${base}/repo`, { cacheStorage: false }).read('config.json', { maxBytes: MB });
    expect(requests.slice(from)).toEqual(['/repo/config.json', '/repo/config.json']);
  });

  it('404 is an absent file; other statuses and bad URLs are errors naming the URL', async () => {
    expect(await urlSource(`${base}/repo/`).read('nothing.json', { maxBytes: MB })).toBeUndefined();
    await expect(urlSource(`${base}/forbidden`).read('config.json', { maxBytes: MB })).rejects.toSatisfy(
      code('E_NOT_FOUND', /GET http:\/\/127\.0\.0\.1:\d+\/forbidden\/config\.json answered HTTP 403 Forbidden/),
    );
    await expect(urlSource('http://127.0.0.1:1/').read('config.json', { maxBytes: MB })).rejects.toSatisfy(
      code('E_NOT_FOUND', /cannot fetch http:\/\/127\.0\.0\.1:1\/config\.json/),
    );
    expect(() => urlSource('ftp://example.com/x')).toThrow(/E_CONFIG.*urlSource expects an http\(s\) URL, got "ftp:\/\/example\.com\/x"/);
    await expect(urlSource(base).read('../secret', { maxBytes: MB })).rejects.toSatisfy(
      code('E_FORMAT', /"\.\.\/secret" is not a plain file name/),
    );
  });
});

describe('dirSource and memorySource', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lora-llama-src-'));
    await writeFile(join(dir, 'a.json'), '{}');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('reads plain names only, and only regular files', async () => {
    const source = dirSource(`${dir}/`);
    expect(source.description).toBe(dir);
    expect(await source.read('a.json', { maxBytes: 10 })).toEqual(new TextEncoder().encode('{}'));
    expect(await source.read('missing.json', { maxBytes: 10 })).toBeUndefined();
    for (const name of ['../a.json', '.hidden', 'x/y', '']) {
      await expect(source.read(name, { maxBytes: 10 })).rejects.toSatisfy(code('E_FORMAT', /is not a plain file name/));
    }
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    await expect(source.read('fifo', { maxBytes: 10 })).rejects.toSatisfy(code('E_FORMAT', /fifo is a FIFO/));
  });

  it('memorySource returns the bytes without copying, bounded by maxBytes, own keys only', async () => {
    const bytes = new Uint8Array([1, 2, 3]);
    const source = memorySource({ 'x.bin': bytes, 'y.bin': bytes.buffer });
    expect(await source.read('x.bin', { maxBytes: 3 })).toBe(bytes);
    expect((await source.read('y.bin', { maxBytes: 3 }))?.buffer).toBe(bytes.buffer);
    expect(await source.read('constructor', { maxBytes: 3 })).toBeUndefined();
    await expect(source.read('x.bin', { maxBytes: 2 })).rejects.toSatisfy(code('E_FORMAT', /x\.bin is 3 bytes; at most maxBytes = 2/));
    await expect(memorySource({ 'z.bin': 'text' as never }).read('z.bin', { maxBytes: 9 })).rejects.toSatisfy(
      code('E_CONFIG', /must be a Uint8Array or an ArrayBuffer, got "text"/),
    );
  });
});
