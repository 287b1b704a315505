import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, relative, sep } from 'node:path';

/** A file's content: text, bytes, `{ size }` (that many zero bytes, served but never held in
 * memory), `{ endless: true }` (a body without length that never ends), or `{ stall: true }`
 * (headers and a few bytes, then nothing). */
export type HubFileBody =
  | string
  | Uint8Array
  | {
      /** That many zero bytes (an LFS file by the same rule as any other). */
      readonly size: number;
    }
  | {
      /** Served by the Hub itself with no Content-Length, and never ending (4 GiB at most): tests of `maxBytes` mid-download. */
      readonly endless: true;
    }
  | {
      /** 16 bytes, then nothing with the connection left open: tests of the download timeout. */
      readonly stall: true;
    };

/** One repository of a {@link startHubServer} server: its commits, extra refs, and whether it is gated. */
export interface HubRepoSpec {
  /** Commits, oldest first, each the repository's files at that commit; `main` is the last one. */
  readonly commits: ReadonlyArray<Readonly<Record<string, HubFileBody>>>;
  /** More branches or tags: name → index in `commits`. */
  readonly refs?: Readonly<Record<string, number>>;
  /** Downloads need the server's token. */
  readonly gated?: boolean;
}

/** What {@link startHubServer} serves: repositories given inline or read from a directory, and its settings. */
export interface HubServerOptions {
  /** Repositories by id: a spec, or just the files of a single commit. */
  readonly repos?: Readonly<Record<string, HubRepoSpec | Readonly<Record<string, HubFileBody>>>>;
  /** A directory of `org/name/...` folders, each served as a repository with one commit. */
  readonly dir?: string;
  /** The token that opens gated repositories. Default `hf_test_token`. */
  readonly token?: string;
  /** Files at least this large are LFS files (as are *.safetensors, *.bin, *.gguf, *.pt, *.pth, *.onnx). Default 10 MiB. */
  readonly lfsMinBytes?: number;
}

/** One request either origin answered, logged when its response closed ({@link HubServer.requests}). */
export interface HubRequestRecord {
  /** 'hub' for the Hub's origin ({@link HubServer.url}), 'cdn' for the origin LFS files redirect to ({@link HubServer.cdnUrl}). */
  readonly origin: 'hub' | 'cdn';
  /** The HTTP method, e.g. GET, HEAD, or POST for `paths-info`. */
  readonly method: string;
  /** The request target as sent: path and query, still percent-encoded. */
  readonly path: string;
  /** The response's status code, e.g. 302 for an LFS redirect, 206 for a range. */
  readonly status: number;
  /** The request carried an `Authorization` header (any value): the CDN must never get one. */
  readonly authorized: boolean;
  /** Body bytes written before the response ended or the client went away. */
  readonly bytesSent: number;
}

/** A running {@link startHubServer} stand-in: its two base URLs, its token and its request log. */
export interface HubServer {
  /** The Hub's base URL (pass it as hubUrl). */
  readonly url: string;
  /** The CDN's base URL (LFS files redirect there). */
  readonly cdnUrl: string;
  /** The token that opens gated repositories (pass it as accessToken); default `hf_test_token`. */
  readonly token: string;
  /** Requests so far, in order. */
  readonly requests: readonly HubRequestRecord[];
  /** The commit id of `commits[index]` of a repository (default: the last, i.e. main). */
  commit(repo: string, index?: number): string;
  /** Empties `requests`, so that a test can assert on what one step alone asked for. */
  clearRequests(): void;
  /** Stops both origins, cutting open connections (stalled and endless bodies included); resolves once they are closed. */
  close(): Promise<void>;
}

interface Blob {
  readonly body: HubFileBody;
  readonly size: number | undefined;
  readonly lfs: boolean;
  /** sha256 for LFS files, git blob sha1 for the others (what the Hub's ETag / X-Linked-Etag say). */
  readonly etag: string;
  /** The ETag of the Hub's redirect itself: the LFS pointer's sha1, which a client must not mistake for the file's. */
  readonly pointerEtag: string;
}

interface Repo {
  readonly commits: { readonly sha: string; readonly files: ReadonlyMap<string, Blob> }[];
  readonly refs: ReadonlyMap<string, number>;
  readonly gated: boolean;
}

const LFS_NAME = /\.(safetensors|bin|gguf|pt|pth|onnx)$/;

function bodyBytes(body: HubFileBody): Uint8Array | undefined {
  if (typeof body === 'string') return new TextEncoder().encode(body);
  return body instanceof Uint8Array ? body : undefined;
}

function makeBlob(path: string, body: HubFileBody, lfsMinBytes: number): Blob {
  const bytes = bodyBytes(body);
  const sized = typeof body === 'object' && 'size' in body ? body.size : undefined;
  const size = bytes?.length ?? sized;
  const lfs = size !== undefined && (LFS_NAME.test(path) || size >= lfsMinBytes);
  const hash = (algorithm: string, ...parts: (string | Uint8Array)[]) => {
    const h = createHash(algorithm);
    for (const part of parts) h.update(part);
    return h.digest('hex');
  };
  let etag: string;
  if (bytes) etag = lfs ? hash('sha256', bytes) : hash('sha1', `blob ${bytes.length}\0`, bytes);
  else if (sized !== undefined) {
    const h = createHash('sha256');
    const zeros = new Uint8Array(1 << 20);
    for (let left = sized; left > 0; left -= zeros.length) h.update(left >= zeros.length ? zeros : zeros.subarray(0, left));
    etag = h.digest('hex');
  } else etag = hash('sha1', `synthetic ${path} ${JSON.stringify(body)}`);
  return { body, size, lfs, etag, pointerEtag: hash('sha1', `pointer ${etag}`) };
}

async function readRepoDir(dir: string): Promise<Record<string, Record<string, HubFileBody>>> {
  const repos: Record<string, Record<string, HubFileBody>> = {};
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const full = join(entry.parentPath ?? (entry as unknown as { path: string }).path, entry.name);
    const [org, name, ...rest] = relative(dir, full).split(sep);
    if (!org || !name || rest.length === 0) continue;
    (repos[`${org}/${name}`] ??= {})[rest.join('/')] = new Uint8Array(await readFile(full));
  }
  return repos;
}

/**
 * Starts a local stand-in for the Hugging Face Hub (127.0.0.1, random ports) that answers downloads
 * the way huggingface.co does, for tests of code that downloads from it:
 *
 * - `GET|HEAD /{repo}/resolve/{revision}/{file}`: a small file is answered with its bytes and
 *   `ETag: "<git blob sha1>"`; an LFS file (weights, or any file from `lfsMinBytes`) with a
 *   302 to a second origin standing for the CDN, with `X-Linked-Etag: "<sha256>"` and
 *   `X-Linked-Size`; both carry `X-Repo-Commit`. Range requests are served (206).
 * - errors as the Hub sends them: 404 + `X-Error-Code: EntryNotFound` (with `X-Repo-Commit`),
 *   `RevisionNotFound`, `RepoNotFound` (401 without a token, so private repositories are not
 *   revealed), `GatedRepo` (401 without a token, 403 with a wrong one), `{"error": ...}` bodies.
 * - `GET /api/models/{repo}/revision/{revision}` and `POST /api/models/{repo}/paths-info/{revision}`
 *   (the API @huggingface/hub's downloadFileToCacheDir uses).
 * - the CDN refuses requests that carry an `Authorization` header, as a signed S3 URL does.
 *
 * Every request is logged, so tests can assert that a cached read made none.
 *
 * Resolves once both origins listen; stop them with {@link HubServer.close}.
 */
export async function startHubServer(options: HubServerOptions = {}): Promise<HubServer> {
  const token = options.token ?? 'hf_test_token';
  const lfsMinBytes = options.lfsMinBytes ?? 10 * 1024 * 1024;
  const specs: Record<string, HubRepoSpec | Readonly<Record<string, HubFileBody>>> = {
    ...(options.dir ? await readRepoDir(options.dir) : {}),
    ...options.repos,
  };
  const repos = new Map<string, Repo>();
  const blobs = new Map<string, Blob>();
  for (const [id, spec] of Object.entries(specs)) {
    const full: HubRepoSpec = Array.isArray((spec as HubRepoSpec).commits)
      ? (spec as HubRepoSpec)
      : { commits: [spec as Record<string, HubFileBody>] };
    const commits = full.commits.map((files, index) => {
      const map = new Map(Object.entries(files).map(([path, body]) => [path, makeBlob(path, body, lfsMinBytes)]));
      for (const blob of map.values()) if (blob.lfs) blobs.set(blob.etag, blob);
      const listing = [...map].map(([path, blob]) => `${path}:${blob.etag}`).join('\n');
      return { sha: createHash('sha1').update(`${id}\n${index}\n${listing}`).digest('hex'), files: map };
    });
    const refs = new Map<string, number>([['main', commits.length - 1], ...Object.entries(full.refs ?? {})]);
    repos.set(id, { commits, refs, gated: full.gated ?? false });
  }

  const requests: HubRequestRecord[] = [];
  let cdnUrl = '';

  function track(origin: 'hub' | 'cdn', req: IncomingMessage, res: ServerResponse): { sent: (n: number) => void } {
    let bytesSent = 0;
    res.on('close', () => {
      requests.push({
        origin,
        method: req.method ?? 'GET',
        path: req.url ?? '',
        status: res.statusCode,
        authorized: req.headers.authorization !== undefined,
        bytesSent,
      });
    });
    return { sent: (n) => (bytesSent += n) };
  }

  function fail(res: ServerResponse, status: number, code: string | undefined, message: string, commit?: string) {
    res.statusCode = status;
    if (code) res.setHeader('X-Error-Code', code);
    res.setHeader('X-Error-Message', message);
    if (commit) res.setHeader('X-Repo-Commit', commit);
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.end(JSON.stringify({ error: message }));
  }

  /** The file's bytes (or a range of them), or the synthetic bodies. */
  function sendBody(req: IncomingMessage, res: ServerResponse, blob: Blob, meter: { sent: (n: number) => void }) {
    const head = req.method === 'HEAD';
    const { body } = blob;
    if (typeof body === 'object' && ('endless' in body || 'stall' in body)) {
      res.setHeader('Content-Type', 'application/octet-stream');
      if (head) return void res.end();
      const chunk = new Uint8Array(64 * 1024).fill(0x61);
      if ('stall' in body) {
        res.write(chunk.subarray(0, 16));
        meter.sent(16);
        return; // and nothing more, until the client gives up
      }
      let total = 0;
      const pump = () => {
        // Stop at 4 GiB whatever happens, so that a client that never stops reading cannot keep a test busy forever.
        while (!res.destroyed && total < 4 * 1024 ** 3) {
          total += chunk.length;
          meter.sent(chunk.length);
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
      return;
    }
    const size = blob.size as number;
    let start = 0;
    let end = size - 1;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range) {
      start = Number(range[1]);
      end = range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
      res.statusCode = 206;
      res.setHeader('Content-Range', `bytes ${start}-${end}/${size}`);
    }
    const length = Math.max(0, end - start + 1);
    res.setHeader('Content-Length', String(length));
    res.setHeader('Accept-Ranges', 'bytes');
    if (head) return void res.end();
    const bytes = bodyBytes(body);
    if (bytes) {
      meter.sent(length);
      return void res.end(bytes.subarray(start, end + 1));
    }
    const zeros = new Uint8Array(1 << 20);
    let left = length;
    const pump = () => {
      while (left > 0 && !res.destroyed) {
        const n = Math.min(left, zeros.length);
        left -= n;
        meter.sent(n);
        if (!res.write(zeros.subarray(0, n))) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  }

  function repoAccess(req: IncomingMessage, res: ServerResponse, id: string): Repo | undefined {
    const auth = req.headers.authorization;
    const repo = repos.get(id);
    if (!repo) {
      // The Hub answers 401 to anonymous requests for repositories it will not confirm exist.
      fail(res, auth ? 404 : 401, 'RepoNotFound', 'Repository not found');
      return undefined;
    }
    if (repo.gated && auth !== `Bearer ${token}`) {
      if (auth) fail(res, 403, 'GatedRepo', `Access to model ${id} is restricted and you are not in the authorized list.`);
      else
        fail(
          res,
          401,
          'GatedRepo',
          `Access to model ${id} is restricted. You must have access to it and be authenticated to access it. Please log in.`,
        );
      return undefined;
    }
    return repo;
  }

  function commitOf(repo: Repo, revision: string) {
    const index = repo.refs.get(revision);
    return index === undefined ? repo.commits.find((c) => c.sha === revision) : repo.commits[index];
  }

  async function readJsonBody(req: IncomingMessage): Promise<unknown> {
    let text = '';
    for await (const chunk of req) {
      text += chunk;
      if (text.length > 1 << 20) throw new Error('body too large');
    }
    return JSON.parse(text);
  }

  const hub = createServer(async (req, res) => {
    const meter = track('hub', req, res);
    const url = new URL(req.url ?? '/', 'http://hub');
    const path = decodeURIComponent(url.pathname);
    const resolve = /^\/(.+?)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const api = /^\/api\/models\/(.+?)\/(revision|paths-info)\/([^/]+)$/.exec(url.pathname);
    try {
      if (resolve && (req.method === 'GET' || req.method === 'HEAD')) {
        const [, id, rev, file] = resolve.map((part) => decodeURIComponent(part)) as [string, string, string, string];
        const repo = repoAccess(req, res, id);
        if (!repo) return;
        const commit = commitOf(repo, rev);
        if (!commit) return fail(res, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
        const blob = commit.files.get(file);
        if (!blob) return fail(res, 404, 'EntryNotFound', 'Entry not found', commit.sha);
        res.setHeader('X-Repo-Commit', commit.sha);
        if (blob.lfs) {
          res.statusCode = 302;
          res.setHeader('Location', `${cdnUrl}/blobs/${blob.etag}?X-Amz-Signature=${blob.etag.slice(0, 16)}`);
          res.setHeader('X-Linked-Etag', `"${blob.etag}"`);
          res.setHeader('X-Linked-Size', String(blob.size));
          res.setHeader('ETag', `"${blob.pointerEtag}"`);
          res.setHeader('Content-Type', 'text/plain; charset=utf-8');
          return void res.end(req.method === 'HEAD' ? undefined : 'Found. Redirecting');
        }
        res.setHeader('ETag', `"${blob.etag}"`);
        res.setHeader('Content-Type', file.endsWith('.json') ? 'application/json; charset=utf-8' : 'application/octet-stream');
        return sendBody(req, res, blob, meter);
      }
      if (api) {
        const [, id, kind, rev] = api.map((part) => decodeURIComponent(part)) as [string, string, string, string];
        const repo = repoAccess(req, res, id);
        if (!repo) return;
        const commit = commitOf(repo, rev);
        if (!commit) return fail(res, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
        res.setHeader('Content-Type', 'application/json; charset=utf-8');
        if (kind === 'revision') {
          return void res.end(
            JSON.stringify({
              id,
              modelId: id,
              sha: commit.sha,
              private: false,
              gated: repo.gated ? 'manual' : false,
              siblings: [...commit.files.keys()].map((rfilename) => ({ rfilename })),
            }),
          );
        }
        const { paths } = (await readJsonBody(req)) as { paths?: string[] };
        const infos = (paths ?? []).flatMap((p) => {
          const blob = commit.files.get(p);
          if (!blob) return [];
          const size = blob.size ?? 0;
          return [
            {
              type: 'file',
              path: p,
              size,
              oid: blob.lfs ? blob.pointerEtag : blob.etag,
              ...(blob.lfs ? { lfs: { oid: blob.etag, size, pointerSize: 134 } } : {}),
              lastCommit: { id: commit.sha, title: 'commit', date: new Date(0).toISOString() },
            },
          ];
        });
        return void res.end(JSON.stringify(infos));
      }
      fail(res, 404, undefined, `Not found: ${path}`);
    } catch (err) {
      if (!res.headersSent) fail(res, 500, undefined, String(err));
      else res.destroy();
    }
  });

  const cdn = createServer((req, res) => {
    const meter = track('cdn', req, res);
    const match = /^\/blobs\/([0-9a-f]{64})$/.exec(new URL(req.url ?? '/', 'http://cdn').pathname);
    const blob = match ? blobs.get(match[1] as string) : undefined;
    if (req.headers.authorization) {
      res.statusCode = 400;
      return void res.end('<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed</Message></Error>');
    }
    if (!blob) {
      res.statusCode = 404;
      return void res.end('<Error><Code>NoSuchKey</Code></Error>');
    }
    res.setHeader('ETag', `"cdn-${blob.etag.slice(0, 32)}"`);
    res.setHeader('Content-Type', 'application/octet-stream');
    sendBody(req, res, blob, meter);
  });

  const listen = (server: Server) =>
    new Promise<string>((done, failed) => {
      server.once('error', failed);
      server.listen(0, '127.0.0.1', () => done(`http://127.0.0.1:${(server.address() as AddressInfo).port}`));
    });
  const url = await listen(hub);
  cdnUrl = await listen(cdn);

  const close = (server: Server) =>
    new Promise<void>((done) => {
      server.closeAllConnections();
      server.close(() => done());
    });

  return {
    url,
    cdnUrl,
    token,
    requests,
    commit(repo, index) {
      const commits = repos.get(repo)?.commits;
      const commit = commits?.[index ?? commits.length - 1];
      if (!commit) throw new Error(`no commit ${index ?? 'main'} in ${repo}`);
      return commit.sha;
    },
    clearRequests() {
      requests.length = 0;
    },
    async close() {
      await Promise.all([close(hub), close(cdn)]);
    },
  };
}
