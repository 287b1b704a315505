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
}

export interface ReadOptions {
  readonly maxBytes: number;
  readonly onProgress?: (event: LoadProgress) => void;
}

/** One progress report of a long load (download, read, conversion). */
export interface LoadProgress {
  /** What is being loaded, e.g. `model.safetensors` or `hub:user/adapter adapter_model.safetensors`. */
  readonly file: string;
  readonly loaded: number;
  /** Bytes in all, where known. */
  readonly total?: number;
}
