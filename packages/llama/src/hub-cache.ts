import { LoRAError, readLocalFile } from '@lora/core';
import { nodeBuiltins } from '@lora/core/backend';
import { COMMIT_HASH, repoFolderName } from './hub-names.js';

/**
 * The Hugging Face cache on disk, in huggingface_hub's layout (`file_download.py`
 * `hf_hub_download` / `_hf_hub_download_to_cache_dir`, documented in "Understand caching"), so
 * that files Python downloaded are reused here and files downloaded here are reused by Python:
 *
 *     <cacheDir>/models--org--name/
 *       blobs/<etag>                       the bytes (etag: git sha1, or sha256 for LFS files)
 *       snapshots/<commit>/<file>          symlink ../../blobs/<etag> (a copy where symlinks fail)
 *       refs/<revision>                    the commit a branch or tag resolved to
 *       .no_exist/<commit>/<file>          empty: the file is known not to exist at that commit
 */
export const NO_EXIST = Symbol('no such file at this commit');

export class HubDiskCache {
  constructor(
    readonly root: string,
    readonly repo: string,
  ) {}

  async #paths() {
    const { fs, path } = await nodeBuiltins('fs', 'path');
    const dir = path.join(this.root, repoFolderName(this.repo));
    const inside = (kind: string, commit: string, file: string) => path.join(dir, kind, commit, ...file.split('/'));
    return { fs, path, dir, inside };
  }

  /** The commit a revision stands for: itself if it is one, else `refs/<revision>`. */
  async commitOf(revision: string): Promise<string | undefined> {
    if (COMMIT_HASH.test(revision)) return revision;
    const { fs, path, dir } = await this.#paths();
    try {
      const commit = (await fs.readFile(path.join(dir, 'refs', ...revision.split('/')), 'utf8')).trim();
      return COMMIT_HASH.test(commit) ? commit : undefined;
    } catch {
      return undefined;
    }
  }

  /** The file's bytes, NO_EXIST when the cache knows it does not exist, undefined when not cached. */
  async read(commit: string, file: string, maxBytes: number): Promise<Uint8Array | typeof NO_EXIST | undefined> {
    const { fs, inside } = await this.#paths();
    // readLocalFile follows the snapshot's symlink to the blob, reads regular files only, bounded.
    const bytes = await readLocalFile(inside('snapshots', commit, file), { maxBytes, what: file });
    if (bytes !== undefined) return bytes;
    try {
      if ((await fs.stat(inside('.no_exist', commit, file))).isFile()) return NO_EXIST;
    } catch {
      // not marked missing
    }
    return undefined;
  }

  /**
   * A blob already cached under another commit or file name (the Hub gave its etag before the
   * download): linked into this commit's snapshot and read from disk instead of downloaded.
   */
  async reuseBlob(revision: string, commit: string, file: string, etag: string, maxBytes: number): Promise<Uint8Array | undefined> {
    const { path, dir } = await this.#paths();
    const bytes = await readLocalFile(path.join(dir, 'blobs', etag), { maxBytes, what: file });
    if (bytes === undefined) return undefined;
    await this.#guard(() => this.#link(revision, commit, file, etag));
    return bytes;
  }

  /** Stores a download: blob, snapshot link, and the ref of the revision it was asked by. */
  async write(revision: string, commit: string, file: string, etag: string, bytes: Uint8Array): Promise<void> {
    const { fs, path, dir } = await this.#paths();
    await this.#guard(async () => {
      const blob = path.join(dir, 'blobs', etag);
      if (!(await exists(fs, blob))) await writeAtomic(fs, path, blob, bytes);
      await this.#link(revision, commit, file, etag);
    });
  }

  /** Records that the file does not exist at this commit (huggingface_hub does, so that optional files cost no request next time). */
  async writeMissing(revision: string, commit: string, file: string): Promise<void> {
    const { fs, path, inside } = await this.#paths();
    await this.#guard(async () => {
      const marker = inside('.no_exist', commit, file);
      await fs.mkdir(path.dirname(marker), { recursive: true });
      await fs.writeFile(marker, '');
      await this.#writeRef(revision, commit);
    });
  }

  async #link(revision: string, commit: string, file: string, etag: string): Promise<void> {
    const { fs, path, dir, inside } = await this.#paths();
    const pointer = inside('snapshots', commit, file);
    const blob = path.join(dir, 'blobs', etag);
    await fs.mkdir(path.dirname(pointer), { recursive: true });
    if (!(await exists(fs, pointer))) {
      // huggingface_hub `file_download.py` `_create_symlink`: a relative link, so that the cache
      // can be moved; where links cannot be made (Windows without developer mode), a copy.
      await fs.rm(pointer, { force: true });
      try {
        await fs.symlink(path.relative(path.dirname(pointer), blob), pointer);
      } catch (err) {
        if ((err as { code?: string }).code !== 'EEXIST') await fs.copyFile(blob, pointer);
      }
    }
    await this.#writeRef(revision, commit);
  }

  async #writeRef(revision: string, commit: string): Promise<void> {
    if (revision === commit) return;
    const { fs, path, dir } = await this.#paths();
    const ref = path.join(dir, 'refs', ...revision.split('/'));
    const current = await fs.readFile(ref, 'utf8').catch(() => undefined);
    // The commit alone, no newline, as huggingface_hub writes it.
    if (current !== commit) await writeAtomic(fs, path, ref, new TextEncoder().encode(commit));
  }

  async #guard(write: () => Promise<void>): Promise<void> {
    try {
      await write();
    } catch (err) {
      if (err instanceof LoRAError) throw err;
      throw new LoRAError(
        'E_CONFIG',
        `cannot write the Hugging Face cache at ${this.root} (${(err as Error).message}); set HF_HUB_CACHE or pass cacheDir (false to not cache)`,
        { cause: err },
      );
    }
  }
}

type Fs = typeof import('node:fs/promises');

async function exists(fs: Fs, file: string): Promise<boolean> {
  try {
    await fs.stat(file);
    return true;
  } catch {
    return false;
  }
}

/** Writes to a unique temporary name and renames: a reader (or a concurrent writer) never sees half a file. */
async function writeAtomic(fs: Fs, path: typeof import('node:path'), file: string, bytes: Uint8Array): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const temp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.incomplete`;
  try {
    await fs.writeFile(temp, bytes);
    await fs.rename(temp, file);
  } finally {
    await fs.rm(temp, { force: true });
  }
}
