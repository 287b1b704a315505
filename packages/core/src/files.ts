import { describeValue, LoRAError } from './errors.js';
import { isNode, nodeBuiltins } from './node.js';

/** A local file opened for reads at offsets (see `openLocalFile`). */
export interface LocalFile {
  /** The path as given to `openLocalFile`, used in error messages. */
  readonly path: string;
  /** Its size when it was opened (at most the `maxBytes` it was opened with). */
  readonly size: number;
  /** Fills `into` with the bytes from `position` on; E_FORMAT when the file ends first (it shrank while open). */
  read(into: Uint8Array, position: number): Promise<void>;
  /** Closes the file handle; the caller must call it when done (reads after it fail with E_FORMAT). */
  close(): Promise<void>;
}

/** Node errors as LoRAErrors: E_FORMAT naming the path. */
function readError(path: string, err: unknown): LoRAError {
  if (err instanceof LoRAError) return err;
  return new LoRAError('E_FORMAT', `cannot read ${path}: ${(err as Error)?.message ?? describeValue(err)}`, { cause: err });
}

type Handle = Awaited<ReturnType<typeof import('node:fs/promises').open>>;

/**
 * Opens `path` for reading after checking it (see `openLocalFile`); undefined when it does not
 * exist. The caller closes the handle.
 */
async function openChecked(
  path: string,
  options: { maxBytes: number; what?: string },
): Promise<{ handle: Handle; size: number } | undefined> {
  if (!isNode()) throw new LoRAError('E_UNSUPPORTED', 'reading local files needs Node.js; in a browser pass the file contents instead');
  if (typeof path !== 'string' || path.length === 0) {
    throw new LoRAError('E_CONFIG', `expected a file path, got ${describeValue(path)}`);
  }
  const { fs } = await nodeBuiltins('fs');
  const what = options.what ?? 'file';
  let handle: Handle | undefined;
  try {
    const info = await fs.stat(path);
    if (!info.isFile()) {
      const kind = info.isDirectory() ? 'a directory' : info.isFIFO() ? 'a FIFO' : info.isSocket() ? 'a socket' : 'not a regular file';
      throw new LoRAError('E_FORMAT', `${path} is ${kind}; expected the ${what} as a regular file`);
    }
    if (info.size > options.maxBytes) {
      throw new LoRAError('E_FORMAT', `${path} is ${info.size} bytes; the ${what} may be at most ${options.maxBytes} bytes`);
    }
    // O_NONBLOCK: if the path was swapped for a FIFO after the stat, open does not wait for a writer.
    handle = await fs.open(path, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
    const opened = await handle.stat();
    if (!opened.isFile()) throw new LoRAError('E_FORMAT', `${path} changed while it was opened; expected a regular file`);
    return { handle, size: Math.min(opened.size, options.maxBytes) };
  } catch (err) {
    await handle?.close();
    const code = (err as { code?: string } | null)?.code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw readError(path, err);
  }
}

/** Reads into `into` from `position` until it is full or the file ends; the bytes read. */
async function fill(handle: Handle, path: string, into: Uint8Array, position: number): Promise<number> {
  let at = 0;
  try {
    while (at < into.length) {
      const { bytesRead } = await handle.read(into, at, into.length - at, position + at);
      if (bytesRead === 0) break;
      at += bytesRead;
    }
  } catch (err) {
    throw readError(path, err);
  }
  return at;
}

/**
 * Node: opens one local file that a user (or a stranger's adapter directory) named, without
 * trusting it. A FIFO or a device would block a read forever and a directory or a 50 GB file is
 * not what was meant, so the path is `stat`ed first: only a regular file of at most `maxBytes` is
 * opened, and reads never go past the size `stat` reported (a file that grows while it is read
 * cannot make them unbounded). Returns undefined when the file does not exist.
 */
export async function openLocalFile(path: string, options: { maxBytes: number; what?: string }): Promise<LocalFile | undefined> {
  const opened = await openChecked(path, options);
  if (opened === undefined) return undefined;
  const { handle, size } = opened;
  return {
    path,
    size,
    async read(into: Uint8Array, position: number): Promise<void> {
      if (!(into instanceof Uint8Array && Number.isSafeInteger(position) && position >= 0 && position + into.length <= size)) {
        throw new LoRAError(
          'E_CONFIG',
          `${path}: cannot read ${describeValue(into?.length)} bytes at ${describeValue(position)} of a ${size}-byte file`,
        );
      }
      const got = await fill(handle, path, into, position);
      if (got < into.length)
        throw new LoRAError('E_FORMAT', `${path} ended at byte ${position + got} while it was read (it was ${size} bytes)`);
    },
    close: () => handle.close(),
  };
}

/**
 * Node: reads one local file whole, with `openLocalFile`'s checks (a regular file of at most
 * `maxBytes`, no more than the size `stat` reported). Returns undefined when the file does not
 * exist, and what there was when it shrank while it was read.
 */
export async function readLocalFile(path: string, options: { maxBytes: number; what?: string }): Promise<Uint8Array | undefined> {
  const opened = await openChecked(path, options);
  if (opened === undefined) return undefined;
  try {
    const bytes = new Uint8Array(opened.size);
    const got = await fill(opened.handle, path, bytes, 0);
    return got === bytes.length ? bytes : bytes.subarray(0, got);
  } finally {
    await opened.handle.close();
  }
}
