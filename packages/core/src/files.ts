import { describeValue, LoRAError } from './errors.js';
import { isNode, nodeFs } from './node.js';

/**
 * Node: reads one local file that a user (or a stranger's adapter directory) named, without
 * trusting it. A FIFO or a device would block `readFile` forever and a directory or a 50 GB file
 * is not what was meant, so the path is `stat`ed first: only a regular file of at most `maxBytes`
 * is read, and exactly the size `stat` reported (a file that grows while it is read cannot make
 * the read unbounded). Returns undefined when the file does not exist.
 */
export async function readLocalFile(path: string, options: { maxBytes: number; what?: string }): Promise<Uint8Array | undefined> {
  if (!isNode()) throw new LoRAError('E_UNSUPPORTED', 'reading local files needs Node.js; in a browser pass the file contents instead');
  if (typeof path !== 'string' || path.length === 0) {
    throw new LoRAError('E_CONFIG', `expected a file path, got ${describeValue(path)}`);
  }
  const { fs } = await nodeFs();
  const what = options.what ?? 'file';
  let handle: Awaited<ReturnType<typeof fs.open>> | undefined;
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
    const size = Math.min(opened.size, options.maxBytes);
    const bytes = new Uint8Array(size);
    let at = 0;
    while (at < size) {
      const { bytesRead } = await handle.read(bytes, at, size - at, at);
      if (bytesRead === 0) break;
      at += bytesRead;
    }
    return at === size ? bytes : bytes.subarray(0, at);
  } catch (err) {
    if (err instanceof LoRAError) throw err;
    const code = (err as { code?: string } | null)?.code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new LoRAError('E_FORMAT', `cannot read ${path}: ${(err as Error)?.message ?? describeValue(err)}`, { cause: err });
  } finally {
    await handle?.close();
  }
}
