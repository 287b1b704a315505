import { LoRAError } from '@lora/core';
import { COMMIT_HASH } from './hub-names.js';

/**
 * One file download from the Hub, with the protocol huggingface_hub speaks (`file_download.py`
 * `get_hf_file_metadata` / `http_get`): `GET /{repo}/resolve/{revision}/{file}` answers a small
 * file directly and a large (LFS/Xet) file with a redirect to its CDN; the Hub's own response
 * carries the commit the revision resolved to (`X-Repo-Commit`), the blob id (`X-Linked-Etag`,
 * else `ETag`) and the size (`X-Linked-Size`, else `Content-Length`). huggingface_hub sends a HEAD
 * first and then a GET; redirects are followed by hand here instead, so one GET gives both the
 * metadata (from the Hub's response, before any CDN) and the bytes.
 */
interface HubFileInfo {
  readonly commit: string | undefined;
  readonly etag: string | undefined;
  readonly size: number | undefined;
}

export interface HubDownload {
  readonly url: string;
  readonly repo: string;
  readonly revision: string;
  readonly file: string;
  readonly accessToken: string | undefined;
  readonly fetch: typeof fetch;
  readonly timeoutMs: number;
  readonly maxBytes: number;
  /** Follow redirects by hand to read the Hub's headers (Node); browsers only give an opaque response for that. */
  readonly manualRedirects: boolean;
  readonly onProgress?: (loaded: number, total: number | undefined) => void;
  /** Called before following the Hub's redirect to a CDN: bytes from a cache that has the blob already skip the download. */
  readonly beforeRedirect?: (info: HubFileInfo) => Promise<Uint8Array | undefined>;
}

export type HubDownloadResult =
  | { readonly kind: 'file'; readonly bytes: Uint8Array; readonly info: HubFileInfo }
  | { readonly kind: 'missing'; readonly info: HubFileInfo };

const MAX_REDIRECTS = 5;
const MAX_ERROR_BODY = 64 * 1024;

class Timeout extends Error {}

/** huggingface_hub `file_download.py` `_normalize_etag`: no weak prefix, no quotes. */
function normalizeEtag(etag: string | null): string | undefined {
  if (etag === null) return undefined;
  const normalized = etag.replace(/^W\//, '').replace(/^"|"$/g, '');
  // It becomes a file name in the cache: only what Hub ids are made of (hex sha1 / sha256).
  return /^[A-Za-z0-9_-]{1,200}$/.test(normalized) ? normalized : undefined;
}

function sizeHeader(value: string | null): number | undefined {
  if (value === null || !/^\d{1,16}$/.test(value)) return undefined;
  return Number(value);
}

/**
 * The size of the body of a response (not a redirect): Content-Length, where it is the file's own
 * size. It is not for a compressed body, and a browser may decompress one without showing
 * Content-Encoding (not a CORS-safelisted header), so there it only bounds the size from below.
 */
function exactLength(res: Response, trusted: boolean): number | undefined {
  const encoding = res.headers.get('content-encoding');
  return trusted && (!encoding || encoding === 'identity') ? sizeHeader(res.headers.get('content-length')) : undefined;
}

function fileInfo(res: Response, trusted: boolean): HubFileInfo | undefined {
  const commit = res.headers.get('x-repo-commit');
  if (commit === null) return undefined;
  const redirect = res.status >= 300 && res.status < 400;
  return {
    commit: COMMIT_HASH.test(commit) ? commit : undefined,
    etag: normalizeEtag(res.headers.get('x-linked-etag') ?? res.headers.get('etag')),
    size: sizeHeader(res.headers.get('x-linked-size')) ?? (redirect ? undefined : exactLength(res, trusted)),
  };
}

const where = (d: HubDownload) => `${d.file} from ${d.repo} at revision ${d.revision}`;
const quote = (text: string) => JSON.stringify(text.length > 200 ? `${text.slice(0, 197)}...` : text);

/** The Hub's error: `X-Error-Code` / `X-Error-Message` headers, else the `{"error": ...}` body. */
async function hubError(d: HubDownload, res: Response, body: string): Promise<LoRAError> {
  const code = res.headers.get('x-error-code');
  let message = res.headers.get('x-error-message') ?? undefined;
  if (message === undefined) {
    try {
      const error = (JSON.parse(body) as { error?: unknown }).error;
      if (typeof error === 'string') message = error;
    } catch {
      // not JSON: the status says enough
    }
  }
  const detail = `HTTP ${res.status}${code ? ` ${code}` : ''}${message ? `: ${quote(message)}` : ''}`;
  const token = d.accessToken !== undefined;
  let hint = '';
  if (code === 'GatedRepo') {
    hint = token
      ? `; ${d.repo} is gated and this token has no access: accept its conditions on the model page with the token's account`
      : `; ${d.repo} is gated: pass an accessToken (or set HF_TOKEN) of an account that accepted its conditions`;
  } else if (code === 'RepoNotFound' || res.status === 401) {
    hint = token
      ? `; check the repository id (a private repository needs a token of an account that can read it)`
      : `; check the repository id, or pass an accessToken (or set HF_TOKEN) if it is private or gated`;
  } else if (code === 'RevisionNotFound') {
    hint = `; ${d.repo} has no revision ${quote(d.revision)}`;
  }
  return new LoRAError('E_NOT_FOUND', `cannot download ${where(d)}: ${detail}${hint}`);
}

/**
 * Reads a body of at most `maxBytes`, stopping (and cancelling the download) as soon as it goes
 * over: a server that sends more than it said, or endlessly, costs at most maxBytes of memory.
 */
async function readBody(
  d: HubDownload,
  res: Response,
  expected: number | undefined,
  arm: () => void,
  total: number | undefined,
): Promise<Uint8Array> {
  if (!res.body) return new Uint8Array(0);
  const reader = res.body.getReader();
  const into = expected === undefined ? undefined : new Uint8Array(expected);
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  let done = false;
  try {
    for (;;) {
      arm();
      const chunk = await reader.read();
      if (chunk.done) break;
      const value = chunk.value;
      loaded += value.length;
      if (loaded > d.maxBytes) {
        throw new LoRAError(
          'E_FORMAT',
          `${where(d)} is more than ${d.maxBytes} bytes; at most ${d.maxBytes} are allowed (download stopped)`,
        );
      }
      if (into) {
        if (loaded > into.length)
          throw new LoRAError('E_FORMAT', `${where(d)}: the server sent more than the ${into.length} bytes it announced`);
        into.set(value, loaded - value.length);
      } else chunks.push(value);
      d.onProgress?.(loaded, total);
    }
    done = true;
  } finally {
    if (!done) await reader.cancel().catch(() => {});
  }
  if (into) {
    if (loaded !== into.length) throw new LoRAError('E_FORMAT', `${where(d)}: the download ended after ${loaded} of ${into.length} bytes`);
    return into;
  }
  return concat(chunks, loaded);
}

function concat(parts: readonly Uint8Array[], size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.length;
  }
  return bytes;
}

async function readErrorBody(res: Response): Promise<string> {
  try {
    const reader = res.body?.getReader();
    if (!reader) return '';
    const parts: Uint8Array[] = [];
    let size = 0;
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
      parts.push(chunk.value);
      size += chunk.value.length;
      if (size > MAX_ERROR_BODY) {
        await reader.cancel();
        break;
      }
    }
    return new TextDecoder().decode(concat(parts, size).subarray(0, MAX_ERROR_BODY));
  } catch {
    return '';
  }
}

export async function downloadHubFile(d: HubDownload): Promise<HubDownloadResult> {
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timedOut = false;
  // A deadline for each response and each chunk (not the whole download: a large file takes long).
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new Timeout());
    }, d.timeoutMs);
  };
  let url = d.url;
  let auth = d.accessToken;
  let info: HubFileInfo | undefined;
  try {
    for (let hop = 0; ; hop++) {
      arm();
      let res = await d.fetch(url, {
        signal: controller.signal,
        redirect: d.manualRedirects ? 'manual' : 'follow',
        headers: {
          // The size and the bytes of the file itself, not of a compressed transfer (huggingface_hub does the same).
          'Accept-Encoding': 'identity',
          ...(auth === undefined ? {} : { Authorization: `Bearer ${auth}` }),
        },
      });
      if (res.type === 'opaqueredirect') {
        // A browser hides manual redirects: let it follow them (the commit and blob id are then unknown).
        res = await d.fetch(url, { signal: controller.signal, headers: auth === undefined ? {} : { Authorization: `Bearer ${auth}` } });
      }
      info ??= fileInfo(res, d.manualRedirects);
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location !== null) {
        await res.body?.cancel().catch(() => {});
        if (info?.size !== undefined && info.size > d.maxBytes) {
          throw new LoRAError('E_FORMAT', `${where(d)} is ${info.size} bytes; at most ${d.maxBytes} are allowed`);
        }
        if (hop >= MAX_REDIRECTS) throw new LoRAError('E_NOT_FOUND', `cannot download ${where(d)}: more than ${MAX_REDIRECTS} redirects`);
        const cached = info && d.beforeRedirect ? await d.beforeRedirect(info) : undefined;
        if (cached) return { kind: 'file', bytes: cached, info: info as HubFileInfo };
        const next = new URL(location, url);
        // Never send the token to another host (the CDN's signed URL carries its own authorization).
        if (next.origin !== new URL(url).origin) auth = undefined;
        url = next.href;
        continue;
      }
      const found = info ?? { commit: undefined, etag: undefined, size: undefined };
      if (res.status === 404) {
        const code = res.headers.get('x-error-code');
        const body = await readErrorBody(res);
        if (code === null || code === 'EntryNotFound') return { kind: 'missing', info: found };
        throw await hubError(d, res, body);
      }
      if (!res.ok) throw await hubError(d, res, await readErrorBody(res));
      const size = exactLength(res, d.manualRedirects) ?? found.size;
      for (const announced of [size, sizeHeader(res.headers.get('content-length'))]) {
        if (announced !== undefined && announced > d.maxBytes) {
          await res.body?.cancel().catch(() => {});
          throw new LoRAError('E_FORMAT', `${where(d)} is ${announced} bytes; at most ${d.maxBytes} are allowed`);
        }
      }
      const bytes = await readBody(d, res, size, arm, size);
      return { kind: 'file', bytes, info: found };
    }
  } catch (err) {
    if (err instanceof LoRAError) throw err;
    if (timedOut) {
      throw new LoRAError('E_NOT_FOUND', `cannot download ${where(d)}: no response from ${new URL(url).origin} within ${d.timeoutMs} ms`, {
        cause: err,
      });
    }
    const cause = (err as { cause?: { message?: unknown } })?.cause?.message ?? (err as Error)?.message ?? String(err);
    throw new LoRAError(
      'E_NOT_FOUND',
      `cannot download ${where(d)}: ${new URL(url).origin} is unreachable (${String(cause).slice(0, 200)})`,
      {
        cause: err,
      },
    );
  } finally {
    clearTimeout(timer);
  }
}
