import { createHash } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { downloadFile, downloadFileToCacheDir, scanCacheDir } from '@huggingface/hub';
import { loadPeftAdapter, type PeftAdapter } from '@lora/core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadPeftAdapterFromHub } from './hub.js';
import type { LoadProgress } from './source.js';
import { hubSource } from './sources/hub.js';
import { fakeCacheStorage } from './test-support.js';
import { type HubServer, startHubServer } from './testing/hub-server.js';
import { testAdapterFiles } from './testing/peft-fixture.js';
import { testTokenizerFiles } from './testing/tokenizer-fixture.js';
import { loadTokenizer } from './tokenizer.js';

const v1 = testAdapterFiles({ seed: 1 });
const v2 = testAdapterFiles({ seed: 2 });
const big = testAdapterFiles({ seed: 3, hidden: 256, layers: 4, rank: 16 });
const sha1 = (bytes: Uint8Array | string) => createHash('sha1').update(bytes).digest('hex');
const sha256 = (bytes: Uint8Array | string) => createHash('sha256').update(bytes).digest('hex');
const gitBlob = (text: string) => sha1(Buffer.concat([Buffer.from(`blob ${Buffer.byteLength(text)}\0`), Buffer.from(text)]));

let server: HubServer;
let cacheDir: string;

beforeAll(async () => {
  server = await startHubServer({
    repos: {
      'org/adapter': {
        commits: [
          { 'adapter_config.json': v1.config, 'adapter_model.safetensors': v1.safetensors },
          // The second commit changes the config only: the weights' blob is the same.
          {
            'adapter_config.json': v1.config.replace('"task_type"', '"revision": 2, "task_type"'),
            'adapter_model.safetensors': v1.safetensors,
            'README.md': '# v2',
          },
        ],
        refs: { 'v1.0': 0, 'refs/pr/1': 0 },
      },
      'org/other': { 'adapter_config.json': v2.config, 'adapter_model.safetensors': v2.safetensors },
      'org/big': { 'adapter_config.json': big.config, 'adapter_model.safetensors': big.safetensors },
      'org/gated': { commits: [{ 'adapter_config.json': v2.config, 'adapter_model.safetensors': v2.safetensors }], gated: true },
      'org/model': testTokenizerFiles(),
    },
  });
});
afterAll(() => server.close());

beforeEach(async () => {
  cacheDir = await mkdtemp(join(tmpdir(), 'lora-hub-'));
  // The machine's own Hugging Face settings must not leak into the tests.
  for (const name of [
    'HF_HUB_OFFLINE',
    'HF_TOKEN',
    'HF_ENDPOINT',
    'HF_HUB_CACHE',
    'HUGGINGFACE_HUB_CACHE',
    'HF_HOME',
    'HF_HUB_DOWNLOAD_TIMEOUT',
  ]) {
    vi.stubEnv(name, '');
  }
  server.clearRequests();
});
afterEach(async () => {
  vi.unstubAllEnvs();
  await rm(cacheDir, { recursive: true, force: true });
});

const sameWeights = (a: PeftAdapter, b: PeftAdapter) => {
  expect([...a.modules.keys()]).toEqual([...b.modules.keys()]);
  for (const [name, m] of a.modules) expect(Array.from(m.a)).toEqual(Array.from(b.modules.get(name)?.a ?? []));
};

describe('loadPeftAdapterFromHub', () => {
  it('downloads an adapter (LFS weights through the CDN), then reads it from the cache with zero requests', async () => {
    const options = { hubUrl: server.url, cacheDir };
    const adapter = await loadPeftAdapterFromHub('org/other', options);
    expect(adapter.id).toBe('org/other');
    sameWeights(adapter, loadPeftAdapter({ id: 'x', config: v2.config, safetensors: v2.safetensors }));
    expect(server.requests.map((r) => [r.origin, r.status])).toEqual([
      ['hub', 200],
      ['hub', 302],
      ['cdn', 200],
    ]);
    server.clearRequests();
    sameWeights(await loadPeftAdapterFromHub('org/other', options), adapter);
    expect(server.requests).toEqual([]);
  });

  it('works offline (HF_HUB_OFFLINE=1) from the cache, and says what is missing', async () => {
    await loadPeftAdapterFromHub('org/other', { hubUrl: server.url, cacheDir });
    server.clearRequests();
    vi.stubEnv('HF_HUB_OFFLINE', '1');
    sameWeights(
      await loadPeftAdapterFromHub('org/other', { hubUrl: server.url, cacheDir }),
      loadPeftAdapter({ id: 'x', config: v2.config, safetensors: v2.safetensors }),
    );
    await expect(loadPeftAdapterFromHub('org/adapter', { hubUrl: server.url, cacheDir })).rejects.toThrow(
      /\[E_NOT_FOUND\] adapter_config.json from org\/adapter at revision main is not in the Hugging Face cache at .* and downloads are off \(HF_HUB_OFFLINE is set\)/,
    );
    expect(server.requests).toEqual([]);
  });

  it('pins revisions: two commits side by side in the cache, a commit id read with zero requests', async () => {
    const options = { hubUrl: server.url, cacheDir };
    const [c0, c1] = [server.commit('org/adapter', 0), server.commit('org/adapter', 1)];
    const main = hubSource('org/adapter', options);
    const mainConfig = new TextDecoder().decode(await main.read('adapter_config.json', { maxBytes: 1e6 }));
    expect(mainConfig).toContain('"revision": 2');
    expect(main.commit).toBe(c1);
    const tagged = hubSource('org/adapter', { ...options, revision: 'v1.0' });
    expect(new TextDecoder().decode(await tagged.read('adapter_config.json', { maxBytes: 1e6 }))).toBe(v1.config);
    expect(tagged.commit).toBe(c0);
    expect(await readFile(join(cacheDir, 'models--org--adapter', 'refs', 'main'), 'utf8')).toBe(c1);
    expect(await readFile(join(cacheDir, 'models--org--adapter', 'refs', 'v1.0'), 'utf8')).toBe(c0);
    expect((await readdir(join(cacheDir, 'models--org--adapter', 'snapshots'))).sort()).toEqual([c0, c1].sort());

    const adapter = await loadPeftAdapterFromHub('org/adapter', { ...options, revision: c0 });
    expect(adapter.id).toBe(`org/adapter@${c0}`);
    server.clearRequests();
    await loadPeftAdapterFromHub('org/adapter', { ...options, revision: c0 });
    expect(server.requests).toEqual([]);
  });

  it('quotes a revision with slashes in the URL and nests its ref in the cache (refs/pr/1)', async () => {
    const source = hubSource('org/adapter', { hubUrl: server.url, cacheDir, revision: 'refs/pr/1' });
    expect(new TextDecoder().decode(await source.read('adapter_config.json', { maxBytes: 1e6 }))).toBe(v1.config);
    expect(server.requests.map((r) => r.path)).toEqual(['/org/adapter/resolve/refs%2Fpr%2F1/adapter_config.json']);
    expect(await readFile(join(cacheDir, 'models--org--adapter', 'refs', 'refs', 'pr', '1'), 'utf8')).toBe(server.commit('org/adapter', 0));
  });

  it('links an LFS blob it already has instead of downloading it again (same weights, new commit)', async () => {
    const options = { hubUrl: server.url, cacheDir };
    await loadPeftAdapterFromHub('org/adapter', { ...options, revision: 'v1.0' });
    server.clearRequests();
    await loadPeftAdapterFromHub('org/adapter', options);
    expect(server.requests.filter((r) => r.origin === 'cdn')).toEqual([]);
    const pointer = join(cacheDir, 'models--org--adapter', 'snapshots', server.commit('org/adapter', 1), 'adapter_model.safetensors');
    expect(await readlink(pointer)).toBe(`../../blobs/${sha256(v1.safetensors)}`);
  });

  it('reads the ids of private and gated repositories with a token, which it never sends to the CDN', async () => {
    await expect(loadPeftAdapterFromHub('org/gated', { hubUrl: server.url, cacheDir })).rejects.toThrow(
      /\[E_NOT_FOUND\] cannot download adapter_config.json from org\/gated at revision main: HTTP 401 GatedRepo: "Access to model org\/gated is restricted.*; org\/gated is gated: pass an accessToken \(or set HF_TOKEN\)/,
    );
    await expect(loadPeftAdapterFromHub('org/gated', { hubUrl: server.url, cacheDir, accessToken: 'hf_wrong' })).rejects.toThrow(
      /HTTP 403 GatedRepo: .*; org\/gated is gated and this token has no access/,
    );
    server.clearRequests();
    vi.stubEnv('HF_TOKEN', server.token);
    await loadPeftAdapterFromHub('org/gated', { hubUrl: server.url, cacheDir });
    expect(server.requests.map((r) => [r.origin, r.status, r.authorized])).toEqual([
      ['hub', 200, true],
      ['hub', 302, true],
      ['cdn', 200, false],
    ]);
  });

  it('reports download progress, and one event for a cached file', async () => {
    const events: LoadProgress[] = [];
    await loadPeftAdapterFromHub('org/big', { hubUrl: server.url, cacheDir, onProgress: (e) => events.push(e) });
    const weights = events.filter((e) => e.file === `hub:org/big@main (${server.url}) adapter_model.safetensors`);
    expect(weights.length).toBeGreaterThan(2);
    expect(
      weights.every((e, i) => e.total === big.safetensors.length && (i === 0 || e.loaded > (weights[i - 1] as LoadProgress).loaded)),
    ).toBe(true);
    expect(weights.at(-1)?.loaded).toBe(big.safetensors.length);
    events.length = 0;
    await loadPeftAdapterFromHub('org/big', { hubUrl: server.url, cacheDir, onProgress: (e) => events.push(e) });
    expect(events.map((e) => e.loaded)).toEqual([big.config.length, big.safetensors.length]);
  });
});

describe('the cache is the Hugging Face cache', () => {
  it('lays files out as huggingface_hub does: blobs by etag, snapshot symlinks, refs', async () => {
    await loadPeftAdapterFromHub('org/other', { hubUrl: server.url, cacheDir });
    const repo = join(cacheDir, 'models--org--other');
    const commit = server.commit('org/other');
    expect((await readdir(repo)).sort()).toEqual(['blobs', 'refs', 'snapshots']);
    expect(await readFile(join(repo, 'refs', 'main'), 'utf8')).toBe(commit);
    expect((await readdir(join(repo, 'blobs'))).sort()).toEqual([gitBlob(v2.config), sha256(v2.safetensors)].sort());
    for (const [file, blob] of [
      ['adapter_config.json', gitBlob(v2.config)],
      ['adapter_model.safetensors', sha256(v2.safetensors)],
    ]) {
      const pointer = join(repo, 'snapshots', commit, file as string);
      expect((await lstat(pointer)).isSymbolicLink()).toBe(true);
      expect(await readlink(pointer)).toBe(`../../blobs/${blob}`);
    }
    // @huggingface/hub's cache scanner (a port of huggingface_hub's scan_cache_dir) reads it.
    const scan = await scanCacheDir(cacheDir);
    expect(scan.warnings).toEqual([]);
    const [cached] = scan.repos;
    expect(cached?.id).toEqual({ name: 'org/other', type: 'model' });
    expect(cached?.revisions.map((r) => [r.commitOid, r.refs, r.files.length])).toEqual([[commit, ['main'], 2]]);
    expect(cached?.size).toBe(v2.config.length + v2.safetensors.length);
  });

  it("reuses files another client put in the cache (@huggingface/hub's downloadFileToCacheDir)", async () => {
    const commit = server.commit('org/other');
    vi.spyOn(console, 'debug').mockImplementation(() => {});
    for (const path of ['adapter_config.json', 'adapter_model.safetensors']) {
      await downloadFileToCacheDir({ repo: 'org/other', path, revision: commit, hubUrl: server.url, cacheDir });
    }
    server.clearRequests();
    const adapter = await loadPeftAdapterFromHub('org/other', { hubUrl: server.url, cacheDir, revision: commit, offline: true });
    sameWeights(adapter, loadPeftAdapter({ id: 'x', config: v2.config, safetensors: v2.safetensors }));
    expect(server.requests).toEqual([]);
  });

  it('records files that do not exist, so optional files cost no request the next time (tokenizer)', async () => {
    const options = { hubUrl: server.url, cacheDir };
    const first = await loadTokenizer(hubSource('org/model', options));
    const commit = server.commit('org/model');
    expect((await lstat(join(cacheDir, 'models--org--model', '.no_exist', commit, 'chat_template.jinja'))).isFile()).toBe(true);
    server.clearRequests();
    const second = await loadTokenizer(hubSource('org/model', options));
    expect(server.requests).toEqual([]);
    expect(second.encode('Hello world 🙂')).toEqual(first.encode('Hello world 🙂'));
    expect(await hubSource('org/model', options).read('chat_template.jinja', { maxBytes: 100 })).toBeUndefined();
    expect(server.requests).toEqual([]);
  });

  it('follows HF_HUB_CACHE, HF_HOME, HF_ENDPOINT and HF_HUB_OFFLINE', async () => {
    vi.stubEnv('HF_ENDPOINT', server.url);
    vi.stubEnv('HF_HUB_CACHE', join(cacheDir, 'hub-cache'));
    await loadPeftAdapterFromHub('org/other');
    expect(await readdir(join(cacheDir, 'hub-cache'))).toEqual(['models--org--other']);
    vi.stubEnv('HF_HUB_CACHE', '');
    vi.stubEnv('HF_HOME', join(cacheDir, 'home'));
    await loadPeftAdapterFromHub('org/other');
    expect(await readdir(join(cacheDir, 'home', 'hub'))).toEqual(['models--org--other']);
    vi.stubEnv('HF_HUB_OFFLINE', 'true');
    server.clearRequests();
    await loadPeftAdapterFromHub('org/other');
    await expect(loadPeftAdapterFromHub('org/big')).rejects.toThrow(
      /not in the Hugging Face cache at .* and downloads are off \(HF_HUB_OFFLINE is set\)/,
    );
    expect(server.requests).toEqual([]);
  });

  it('lets fetch follow redirects where a manual redirect is opaque (browsers)', async () => {
    const browserLike: typeof fetch = async (input, init) => {
      if (init?.redirect === 'manual') {
        // What a browser returns for a redirect it was told not to follow: no status, no headers.
        return Object.defineProperty(new Response(null), 'type', { value: 'opaqueredirect' });
      }
      return fetch(input, init);
    };
    const source = hubSource('org/other', { hubUrl: server.url, cacheDir: false, fetch: browserLike });
    expect(await source.read('adapter_model.safetensors', { maxBytes: 1e7 })).toEqual(v2.safetensors);
    expect(server.requests.map((r) => [r.origin, r.status])).toEqual([
      ['hub', 302],
      ['cdn', 200],
    ]);
  });

  it('caches in Cache Storage by resolve URL where there is no disk (browsers)', async () => {
    const { storage, stored, names } = fakeCacheStorage();
    const options = { hubUrl: server.url, cacheDir: false as const, cacheStorage: storage };
    await loadPeftAdapterFromHub('org/other', options);
    expect([...stored.keys()].sort()).toEqual([
      `${server.url}/org/other/resolve/main/adapter_config.json`,
      `${server.url}/org/other/resolve/main/adapter_model.safetensors`,
    ]);
    expect(new Set(names)).toEqual(new Set(['transformers-cache']));
    server.clearRequests();
    await loadPeftAdapterFromHub('org/other', { ...options, offline: true });
    expect(server.requests).toEqual([]);
    await expect(loadPeftAdapterFromHub('org/big', { ...options, offline: true })).rejects.toThrow(
      /adapter_config.json from org\/big at revision main is not in Cache Storage and downloads are off \(offline: true\)/,
    );
  });
});

describe('the test server speaks the Hub protocol', () => {
  it('serves repositories from a directory of org/name folders', async () => {
    const dir = join(cacheDir, 'repos');
    await mkdir(join(dir, 'acme', 'lora', 'nested'), { recursive: true });
    await writeFile(join(dir, 'acme', 'lora', 'adapter_config.json'), v2.config);
    await writeFile(join(dir, 'acme', 'lora', 'adapter_model.safetensors'), v2.safetensors);
    await writeFile(join(dir, 'acme', 'lora', 'nested', 'notes.txt'), 'hello');
    const local = await startHubServer({ dir });
    try {
      const adapter = await loadPeftAdapterFromHub('acme/lora', { hubUrl: local.url, cacheDir: false });
      sameWeights(adapter, loadPeftAdapter({ id: 'x', config: v2.config, safetensors: v2.safetensors }));
      const notes = await hubSource('acme/lora', { hubUrl: local.url, cacheDir }).read('nested/notes.txt', { maxBytes: 100 });
      expect(new TextDecoder().decode(notes)).toBe('hello');
      expect(local.requests.map((r) => r.status)).toEqual([200, 302, 200, 200]);
    } finally {
      await local.close();
    }
  });

  it('serves @huggingface/hub downloadFile (Range requests, the LFS redirect to the CDN)', async () => {
    const blob = await downloadFile({ repo: 'org/other', path: 'adapter_model.safetensors', hubUrl: server.url, xet: false });
    expect(new Uint8Array(await (blob as Blob).arrayBuffer())).toEqual(v2.safetensors);
    const config = await downloadFile({ repo: 'org/other', path: 'adapter_config.json', hubUrl: server.url });
    expect(await config?.text()).toBe(v2.config);
    expect(await downloadFile({ repo: 'org/other', path: 'nope.json', hubUrl: server.url })).toBeNull();
  });
});
