import { describeValue, LoRAError } from '@lora/core';
import { isNode } from '@lora/core/backend';
import { cacheStorageOf, readCached, writeCached } from '../browser-cache.js';
import { HubDiskCache, NO_EXIST } from '../hub-cache.js';
import { DEFAULT_ENDPOINT, type HubEnvironment, hubEnvironment } from '../hub-env.js';
import { downloadHubFile, type HubDownload } from '../hub-http.js';
import { checkFileName, checkRepoId, checkRevision, resolveUrl } from '../hub-names.js';
import type { FileSource, LoadProgress, ReadOptions } from '../source.js';

/**
 * Options of {@link hubSource} (and of {@link locateSource} for Hub ids). In Node, an option left out
 * falls back to the environment variable huggingface_hub reads for it, where there is one
 * (`HF_ENDPOINT`, `HF_TOKEN`, `HF_HUB_CACHE`, `HF_HUB_OFFLINE`, `HF_HUB_DOWNLOAD_TIMEOUT`);
 * browsers use the built-in defaults.
 */
export interface HubSourceOptions {
  /** Branch, tag or commit id. Default `main`. */
  readonly revision?: string;
  /** Default `HF_ENDPOINT`, else https://huggingface.co. */
  readonly hubUrl?: string;
  /** For private and gated repositories. Default `HF_TOKEN`. Sent to the Hub only, never to its CDN. */
  readonly accessToken?: string;
  /** Node: the Hugging Face cache directory (default `HF_HUB_CACHE`, `$HF_HOME/hub`, ~/.cache/huggingface/hub); false: no disk cache. */
  readonly cacheDir?: string | false;
  /** Browsers: the Cache Storage to keep downloads in (default `caches`); false: none. */
  readonly cacheStorage?: CacheStorage | false;
  /** Read the cache only, never the network. Default: `HF_HUB_OFFLINE`. */
  readonly offline?: boolean;
  /** The fetch for every request to the Hub and its CDN (default: the global fetch, looked up at each request). */
  readonly fetch?: typeof fetch;
  /** Deadline for each response and each chunk of a download, in ms. Default `HF_HUB_DOWNLOAD_TIMEOUT` seconds, else 10 s. */
  readonly timeoutMs?: number;
  /**
   * Called for every file this source reads, as bytes arrive (once with the whole size on a cache
   * hit), besides each read's own `onProgress`; `file` is the source's description and the file name,
   * e.g. `hub:org/name@main config.json`.
   */
  readonly onProgress?: (event: LoadProgress) => void;
}

/** A Hugging Face Hub model repository at one revision, as a FileSource. */
export interface HubSource extends FileSource {
  /** The repository id, `org/name`. */
  readonly repo: string;
  /** The branch, tag or commit id asked for (default `main`); `commit` is what it resolved to. */
  readonly revision: string;
  /** The commit this source reads from, once a read has resolved the revision; every later read uses it. */
  readonly commit: string | undefined;
}

function checkOptions(options: HubSourceOptions): void {
  if (options === null || typeof options !== 'object')
    throw new LoRAError('E_CONFIG', `hub options must be an object, got ${describeValue(options)}`);
  const { hubUrl, accessToken, cacheDir, timeoutMs, fetch } = options;
  if (hubUrl !== undefined) {
    let protocol: string | undefined;
    try {
      protocol = new URL(hubUrl).protocol;
    } catch {
      protocol = undefined;
    }
    if (protocol !== 'http:' && protocol !== 'https:') {
      throw new LoRAError('E_CONFIG', `hubUrl must be an http(s) URL such as ${DEFAULT_ENDPOINT}, got ${describeValue(hubUrl)}`);
    }
  }
  if (accessToken !== undefined && (typeof accessToken !== 'string' || !/^[!-~]+$/.test(accessToken))) {
    throw new LoRAError(
      'E_CONFIG',
      'accessToken must be a non-empty string of printable ASCII without spaces (a Hugging Face token, hf_...)',
    );
  }
  if (cacheDir !== undefined && cacheDir !== false && (typeof cacheDir !== 'string' || cacheDir.length === 0)) {
    throw new LoRAError('E_CONFIG', `cacheDir must be a directory path or false, got ${describeValue(cacheDir)}`);
  }
  if (timeoutMs !== undefined && !(typeof timeoutMs === 'number' && timeoutMs > 0 && timeoutMs <= 2 ** 31 - 1)) {
    throw new LoRAError('E_CONFIG', `timeoutMs must be a positive number of milliseconds, got ${describeValue(timeoutMs)}`);
  }
  if (fetch !== undefined && typeof fetch !== 'function')
    throw new LoRAError('E_CONFIG', `fetch must be a function, got ${describeValue(fetch)}`);
}

/**
 * Files of a Hub model repository: `/{repo}/resolve/{revision}/{file}` with the Hub's download
 * protocol (see hub-http.ts), through a cache. In Node the cache is the Hugging Face cache
 * directory shared with Python (see hub-cache.ts); in browsers, Cache Storage.
 *
 * A file is read from the cache without any request when the revision resolves there (a commit
 * id, or `refs/{revision}`) and its snapshot has the file (or records that it does not exist).
 * Otherwise the Hub is asked, and the commit it answers becomes this source's commit: later reads
 * ask for that commit, so that the files of one model all come from the same commit even if the
 * branch moves meanwhile (read them one after the other for that). huggingface_hub instead asks
 * the Hub again for every file of a branch; to pick up a new commit of a branch, make a new
 * source after removing `refs/{revision}`, or ask for the commit id.
 */
export function hubSource(repo: string, options: HubSourceOptions = {}): HubSource {
  checkRepoId(repo);
  checkOptions(options);
  const revision = checkRevision(options.revision ?? 'main');
  const description = `hub:${repo}@${revision}${options.hubUrl === undefined ? '' : ` (${options.hubUrl.replace(/\/+$/, '')})`}`;
  let env: Promise<HubEnvironment> | undefined;
  let commit: string | undefined;
  const pin = (resolved: string | undefined) => {
    commit ??= resolved;
  };

  async function read(name: string, { maxBytes, onProgress }: ReadOptions): Promise<Uint8Array | undefined> {
    checkFileName(name);
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) {
      throw new LoRAError('E_CONFIG', `maxBytes must be a non-negative integer, got ${describeValue(maxBytes)}`);
    }
    const settings = await (env ??= hubEnvironment());
    const hubUrl = (options.hubUrl ?? settings.endpoint).replace(/\/+$/, '');
    const offline = options.offline ?? settings.offline;
    const label = `${description} ${name}`;
    const progress = (loaded: number, total: number | undefined) => {
      const event: LoadProgress = { file: label, loaded, total };
      onProgress?.(event);
      options.onProgress?.(event);
    };
    const download = (asked: string, extra: Partial<HubDownload> = {}) =>
      downloadHubFile({
        url: resolveUrl(hubUrl, repo, asked, name),
        repo,
        revision: asked === revision ? revision : `${revision} (commit ${asked})`,
        file: name,
        accessToken: options.accessToken ?? settings.token,
        fetch: options.fetch ?? ((input, init) => globalThis.fetch(input, init)),
        timeoutMs: options.timeoutMs ?? settings.timeoutMs,
        maxBytes,
        manualRedirects: isNode(),
        onProgress: progress,
        ...extra,
      });
    const offlineMiss = (where: string) =>
      new LoRAError(
        'E_NOT_FOUND',
        `${name} from ${repo} at revision ${revision} is not in ${where} and downloads are off (${options.offline === undefined ? 'HF_HUB_OFFLINE is set' : 'offline: true'})`,
      );

    const cacheDir = options.cacheDir === false ? undefined : (options.cacheDir ?? settings.cacheDir);
    if (cacheDir !== undefined) {
      if (!isNode()) throw new LoRAError('E_UNSUPPORTED', 'cacheDir needs Node.js; in a browser downloads are kept in Cache Storage');
      const cache = new HubDiskCache(cacheDir, repo);
      const known = commit ?? (await cache.commitOf(revision));
      if (known !== undefined) {
        const hit = await cache.read(known, name, maxBytes);
        if (hit === NO_EXIST) {
          pin(known);
          return undefined;
        }
        if (hit !== undefined) {
          pin(known);
          progress(hit.length, hit.length);
          return hit;
        }
      }
      if (offline) throw offlineMiss(`the Hugging Face cache at ${cacheDir}`);
      const result = await download(commit ?? revision, {
        // An LFS file whose blob is cached already (the same weights under another commit) is linked, not downloaded.
        beforeRedirect: async (info) =>
          info.commit !== undefined && info.etag !== undefined
            ? cache.reuseBlob(revision, info.commit, name, info.etag, maxBytes)
            : undefined,
      });
      const { commit: resolved, etag } = result.info;
      if (result.kind === 'missing') {
        if (resolved !== undefined) await cache.writeMissing(revision, resolved, name);
      } else if (resolved !== undefined && etag !== undefined) {
        await cache.write(revision, resolved, name, etag, result.bytes);
      }
      pin(resolved);
      return result.kind === 'file' ? result.bytes : undefined;
    }

    const storage = cacheStorageOf(options.cacheStorage);
    if (storage !== undefined) {
      const key = resolveUrl(hubUrl, repo, revision, name);
      const hit = await readCached(storage, key, maxBytes, label);
      if (hit !== undefined) {
        progress(hit.length, hit.length);
        return hit;
      }
      if (offline) throw offlineMiss('Cache Storage');
      const result = await download(revision);
      if (result.kind === 'missing') return undefined;
      await writeCached(storage, key, result.bytes);
      return result.bytes;
    }

    if (offline) throw offlineMiss('any cache (caching is off)');
    const result = await download(commit ?? revision);
    pin(result.info.commit);
    return result.kind === 'file' ? result.bytes : undefined;
  }

  return {
    description,
    repo,
    revision,
    get commit() {
      return commit;
    },
    read,
  };
}
