import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isLoRAError } from '@lora/core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadPeftAdapterFrom } from './adapter-source.js';
import { loadPeftAdapterFromHub } from './hub.js';
import { hubSource } from './sources/hub.js';
import { type HubRequestRecord, type HubServer, startHubServer } from './testing/hub-server.js';
import { textFileSource as memorySource } from './testing/memory-source.js';
import { testAdapterFiles } from './testing/peft-fixture.js';

const files = testAdapterFiles();
const MiB = 1024 * 1024;
let server: HubServer;
let cacheDir: string;

beforeAll(async () => {
  server = await startHubServer({
    repos: {
      'org/adapter': { 'adapter_config.json': files.config, 'adapter_model.safetensors': files.safetensors },
      'org/pickle': { 'adapter_config.json': files.config, 'adapter_model.bin': 'not really a pickle' },
      'org/no-weights': { 'adapter_config.json': files.config },
      'org/broken': { 'adapter_config.json': files.config, 'adapter_model.safetensors': 'garbage' },
      'org/huge': { 'adapter_config.json': files.config, 'adapter_model.safetensors': { size: 64 * MiB } },
      'org/endless': { 'tokenizer.json': { endless: true } },
      'org/stall': { 'config.json': { stall: true } },
    },
  });
});
afterAll(() => server.close());
beforeEach(async () => {
  cacheDir = await mkdtemp(join(tmpdir(), 'lora-hub-'));
  for (const name of ['HF_HUB_OFFLINE', 'HF_TOKEN', 'HF_ENDPOINT', 'HF_HUB_CACHE', 'HF_HOME', 'HF_HUB_DOWNLOAD_TIMEOUT'])
    vi.stubEnv(name, '');
  server.clearRequests();
});
afterEach(async () => {
  vi.unstubAllEnvs();
  await rm(cacheDir, { recursive: true, force: true });
});

async function failure(promise: Promise<unknown>): Promise<Error & { code: string }> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isLoRAError(err), `expected a LoRAError, got ${String(err)}`).toBe(true);
  expect((err as Error).message.length).toBeLessThan(700);
  return err as Error & { code: string };
}

/** The server logs a request when its connection closes: wait for that. */
async function settled(count: number): Promise<readonly HubRequestRecord[]> {
  for (let i = 0; i < 200 && server.requests.length < count; i++) await new Promise((r) => setTimeout(r, 10));
  return server.requests;
}

describe('Hub errors name the repository, revision and file', () => {
  it('a repository that does not exist (401 without a token, 404 with one)', async () => {
    const anonymous = await failure(loadPeftAdapterFromHub('org/missing', { hubUrl: server.url, cacheDir }));
    expect(anonymous.code).toBe('E_NOT_FOUND');
    expect(anonymous.message).toMatch(
      /cannot download adapter_config.json from org\/missing at revision main: HTTP 401 RepoNotFound: "Repository not found"; check the repository id, or pass an accessToken \(or set HF_TOKEN\) if it is private or gated/,
    );
    const withToken = await failure(loadPeftAdapterFromHub('org/missing', { hubUrl: server.url, cacheDir, accessToken: 'hf_x' }));
    expect(withToken.message).toMatch(/HTTP 404 RepoNotFound: "Repository not found"; check the repository id \(a private repository/);
  });

  it('a revision that does not exist', async () => {
    const err = await failure(loadPeftAdapterFromHub('org/adapter', { hubUrl: server.url, cacheDir, revision: 'v9' }));
    expect(err.message).toMatch(
      /from org\/adapter at revision v9: HTTP 404 RevisionNotFound: "Invalid rev id: v9"; org\/adapter has no revision "v9"/,
    );
  });

  it('a missing file is undefined for the source, and E_NOT_FOUND for the adapter loader', async () => {
    expect(await hubSource('org/adapter', { hubUrl: server.url, cacheDir }).read('nope.json', { maxBytes: 100 })).toBeUndefined();
    const err = await failure(loadPeftAdapterFromHub('org/no-weights', { hubUrl: server.url, cacheDir }));
    expect(err.code).toBe('E_NOT_FOUND');
    expect(err.message).toMatch(new RegExp(`hub:org/no-weights@main \\(${server.url}\\): adapter_model.safetensors not found`));
  });

  it('adapter_model.bin only → E_UNSUPPORTED, without downloading the pickle', async () => {
    const err = await failure(loadPeftAdapterFromHub('org/pickle', { hubUrl: server.url, cacheDir }));
    expect(err.code).toBe('E_UNSUPPORTED');
    expect(err.message).toMatch(/hub:org\/pickle@main .* has adapter_model.bin .* convert it/);
    const requests = await settled(3);
    expect(requests.filter((r) => r.path.endsWith('adapter_model.bin')).map((r) => [r.origin, r.status])).toEqual([['hub', 302]]);
  });

  it('a broken safetensors file → E_FORMAT naming the repository and the file', async () => {
    const err = await failure(loadPeftAdapterFromHub('org/broken', { hubUrl: server.url, cacheDir }));
    expect(err.code).toBe('E_FORMAT');
    expect(err.message).toMatch(/^\[E_FORMAT\] hub:org\/broken@main .*: .*safetensors/);
  });

  it('an unreachable Hub → E_NOT_FOUND with the cause', async () => {
    // A port nothing listens on.
    const closed = createServer();
    await new Promise<void>((done) => closed.listen(0, '127.0.0.1', done));
    const { port } = closed.address() as AddressInfo;
    await new Promise((done) => closed.close(done));
    const err = await failure(loadPeftAdapterFromHub('org/adapter', { hubUrl: `http://127.0.0.1:${port}`, cacheDir }));
    expect(err.code).toBe('E_NOT_FOUND');
    expect(err.message).toMatch(
      new RegExp(
        `cannot download adapter_config.json from org/adapter at revision main: http://127.0.0.1:${port} is unreachable \\(.*ECONNREFUSED`,
      ),
    );
    expect(err.cause).toBeDefined();
  });

  it('a server that stops answering → E_NOT_FOUND after the timeout, not a hang', async () => {
    const started = performance.now();
    const err = await failure(
      hubSource('org/stall', { hubUrl: server.url, cacheDir: false, timeoutMs: 200 }).read('config.json', { maxBytes: MiB }),
    );
    expect(err.message).toMatch(
      /cannot download config.json from org\/stall at revision main: no response from http:\/\/127.0.0.1:\d+ within 200 ms/,
    );
    expect(performance.now() - started).toBeLessThan(5000);
    vi.stubEnv('HF_HUB_DOWNLOAD_TIMEOUT', '0.2');
    await expect(hubSource('org/stall', { hubUrl: server.url, cacheDir: false }).read('config.json', { maxBytes: MiB })).rejects.toThrow(
      /within 200 ms/,
    );
  });

  it('a cache directory that cannot be written → E_CONFIG saying how to change it', async () => {
    const file = join(cacheDir, 'not-a-directory');
    await writeFile(file, '');
    const err = await failure(loadPeftAdapterFromHub('org/adapter', { hubUrl: server.url, cacheDir: file }));
    expect(err.code).toBe('E_CONFIG');
    expect(err.message).toMatch(
      /cannot write the Hugging Face cache at .*not-a-directory .*; set HF_HUB_CACHE or pass cacheDir \(false to not cache\)/,
    );
  });
});

describe('downloads are bounded by maxBytes', () => {
  it('a file announced larger than maxBytes is refused before the CDN is asked', async () => {
    const err = await failure(loadPeftAdapterFromHub('org/huge', { hubUrl: server.url, cacheDir, maxBytes: MiB }));
    expect(err.code).toBe('E_FORMAT');
    expect(err.message).toMatch(
      /adapter_model.safetensors from org\/huge at revision main \(commit [0-9a-f]{40}\) is 67108864 bytes; at most 1048576 are allowed/,
    );
    const requests = await settled(2);
    expect(requests.filter((r) => r.origin === 'cdn')).toEqual([]);
  });

  it('a body that never ends is cut off at maxBytes: bounded time, memory and transfer, nothing cached', async () => {
    const before = process.memoryUsage().arrayBuffers;
    const started = performance.now();
    const err = await failure(hubSource('org/endless', { hubUrl: server.url, cacheDir }).read('tokenizer.json', { maxBytes: MiB }));
    expect(err.code).toBe('E_FORMAT');
    expect(err.message).toMatch(
      /tokenizer.json from org\/endless at revision main is more than 1048576 bytes; at most 1048576 are allowed \(download stopped\)/,
    );
    expect(performance.now() - started).toBeLessThan(5000);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * MiB);
    const [request] = await settled(1);
    // What the server got out before the client hung up: maxBytes plus what socket buffers hold.
    expect(request?.bytesSent).toBeLessThan(32 * MiB);
    expect(await readdir(join(cacheDir))).toEqual([]);
  });

  it('a body shorter or longer than announced is an error, and is not cached', async () => {
    const commit = 'a'.repeat(40);
    const lying = (length: string) =>
      (async () =>
        new Response('abc', {
          headers: { 'content-length': length, 'x-repo-commit': commit, etag: `"${'b'.repeat(40)}"` },
        })) as typeof fetch;
    const short = await failure(hubSource('org/x', { cacheDir, fetch: lying('10') }).read('config.json', { maxBytes: 100 }));
    expect(short.message).toMatch(/config.json from org\/x at revision main: the download ended after 3 of 10 bytes/);
    const long = await failure(hubSource('org/x', { cacheDir, fetch: lying('2') }).read('config.json', { maxBytes: 100 }));
    expect(long.message).toMatch(/config.json from org\/x at revision main: the server sent more than the 2 bytes it announced/);
    expect(await readdir(cacheDir)).toEqual([]);
  });

  it('the whole file counts, from the cache too', async () => {
    await loadPeftAdapterFromHub('org/adapter', { hubUrl: server.url, cacheDir });
    const err = await failure(loadPeftAdapterFromHub('org/adapter', { hubUrl: server.url, cacheDir, maxBytes: 100, offline: true }));
    expect(err.code).toBe('E_FORMAT');
    expect(err.message).toMatch(/adapter_model.safetensors may be at most 100 bytes/);
  });
});

describe('names are checked before anything is read', () => {
  it.each([['../etc'], ['org/na..me'], ['/abs'], ['a/b/c'], ['org--x/y'], [''], ['org/name.git'], [`org/${'x'.repeat(97)}`], [42]])(
    'repository id %j → E_CONFIG',
    (repo) => {
      expect(() => hubSource(repo as string)).toThrow(/\[E_CONFIG\] expected a Hugging Face repository id such as "org\/name"/);
    },
  );

  it.each([['../main'], ['a//b'], [''], ['/main'], ['a b'], ['x/../../y']])('revision %j → E_CONFIG', (revision) => {
    expect(() => hubSource('org/adapter', { revision })).toThrow(/\[E_CONFIG\] expected a revision/);
  });

  it.each([['../secret'], ['/etc/passwd'], ['a//b'], ['C:x'], ['a\\b'], ['dir/./x'], ['x\u0000']])(
    'file name %j → E_CONFIG',
    async (name) => {
      await expect(hubSource('org/adapter', { hubUrl: server.url, cacheDir }).read(name, { maxBytes: 10 })).rejects.toThrow(
        /\[E_CONFIG\] expected a relative file name inside the repository/,
      );
      expect(server.requests).toEqual([]);
    },
  );

  it('options', () => {
    expect(() => hubSource('org/a', { hubUrl: 'ftp://x' })).toThrow(/hubUrl must be an http\(s\) URL .* got "ftp:\/\/x"/);
    expect(() => hubSource('org/a', { timeoutMs: -1 })).toThrow(/timeoutMs must be a positive number of milliseconds, got -1/);
    expect(() => hubSource('org/a', { cacheDir: '' })).toThrow(/cacheDir must be a directory path or false/);
    expect(() => hubSource('org/a', { accessToken: 'hf x' })).toThrow(
      /accessToken must be a non-empty string of printable ASCII without spaces/,
    );
  });
});

describe('loadPeftAdapterFrom any FileSource', () => {
  it('loads from files in memory, and names the source in errors', async () => {
    const adapter = await loadPeftAdapterFrom(
      memorySource({ 'adapter_config.json': files.config, 'adapter_model.safetensors': files.safetensors }),
      'a',
    );
    expect(adapter.modules.size).toBe(4);
    const noConfig = await failure(loadPeftAdapterFrom(memorySource({}, 'dir:/tmp/x'), 'a'));
    expect(noConfig.message).toMatch(/^\[E_NOT_FOUND\] dir:\/tmp\/x: adapter_config.json not found; expected a PEFT LoRA adapter/);
    const pickle = await failure(
      loadPeftAdapterFrom(memorySource({ 'adapter_config.json': files.config, 'adapter_model.bin': '' }, 'm'), 'a'),
    );
    expect(pickle.code).toBe('E_UNSUPPORTED');
    const badConfig = await failure(
      loadPeftAdapterFrom(memorySource({ 'adapter_config.json': '{"r": "x"}', 'adapter_model.safetensors': files.safetensors }, 'm'), 'a'),
    );
    expect(badConfig.message).toMatch(/^\[E_\w+\] m: /);
    await expect(loadPeftAdapterFrom(memorySource({}), '')).rejects.toThrow(/adapter id must be a non-empty string, got ""/);
  });
});
