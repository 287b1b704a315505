/**
 * Where a model's or an adapter's files come from: a local directory (Node), an in-memory map
 * (a browser that fetched or was handed the files), a base URL, or a Hugging Face Hub repository
 * (with its download cache). Loaders read files by name through this one interface, so the same
 * checkpoint / tokenizer / adapter code runs on every kind of source.
 */
export interface FileSource {
  /** What the files are, for error messages: a directory path, a URL, `hub:user/repo@revision`. */
  readonly description: string;
  /**
   * The file's bytes, or undefined when the source has no such file. `maxBytes` bounds what a
   * source may return (an untrusted source cannot make the reader allocate more): a larger file
   * is refused with `LoRAError('E_FORMAT')` naming it. `onProgress` reports bytes as they arrive.
   */
  read(name: string, options: ReadOptions): Promise<Uint8Array | undefined>;
  /**
   * Optional, for sources that can read at offsets (a local directory): the file opened, or
   * undefined when there is no such file, with `read`'s `maxBytes` rule. The checkpoint loader
   * then reads each tensor straight into the array it keeps instead of holding whole files:
   * peak memory near the float32 model alone, and one copy fewer. `onProgress` is the loader's.
   */
  open?(name: string, options: ReadOptions): Promise<RandomAccessFile | undefined>;
}

/** A file opened for reads at offsets (core's `openLocalFile` gives one for a local file). */
export interface RandomAccessFile {
  /** Its size when it was opened. */
  readonly size: number;
  /** Fills `into` with the bytes from `position` on; rejects when the file ends first. */
  read(into: Uint8Array, position: number): Promise<void>;
  /** Releases the file handle; the loader calls it once it has read what it needs, also after a failure. */
  close(): Promise<void>;
}

/** Options of {@link FileSource.read} and {@link FileSource.open}. */
export interface ReadOptions {
  /** The largest file, in bytes, the caller accepts; a larger one is refused with E_FORMAT before it is read whole. */
  readonly maxBytes: number;
  /** Called with the bytes received so far, as they arrive. */
  readonly onProgress?: (event: LoadProgress) => void;
}

/** One progress report of a long load (download, read, conversion). */
export interface LoadProgress {
  /** What is being loaded, e.g. `model.safetensors` or `hub:user/adapter adapter_model.safetensors`. */
  readonly file: string;
  /** Bytes of `file` read (or converted) so far; equals `total` in a file's last report. */
  readonly loaded: number;
  /** Bytes in all, where known. */
  readonly total?: number;
}
