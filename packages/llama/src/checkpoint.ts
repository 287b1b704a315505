import {
  decodableDType,
  describeValue,
  isLoRAError,
  LoRAError,
  type LoRARuntime,
  parseSafetensors,
  parseSafetensorsLayout,
  readSafetensorsHeaderLength,
  type SafetensorsLayout,
} from '@lora/core';
import { parseCheckpointIndex, SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME } from './checkpoint-index.js';
import { type ModelConfig, type ParseConfigOptions, parseModelConfig } from './config.js';
import { type CausalLM, createCausalLM } from './model.js';
import { checkpointTensors, elements, isIgnoredTensor, LM_HEAD, modelFloat32Bytes } from './modules.js';
import type { FileSource, LoadProgress, RandomAccessFile } from './source.js';
import { filePath } from './sources/names.js';
import { type ModelSource, toFileSource } from './sources/resolve.js';
import { readTensors, type TensorRead } from './tensor-reader.js';
import { WeightDestinations } from './weight-destinations.js';

/** Options of {@link loadModelConfig} (and, with a runtime, of {@link loadModel}). */
export interface LoadConfigOptions extends ParseConfigOptions {
  /** Largest file the loader reads (default: config.json 4 MiB; weights the float32 model size + 64 MiB). */
  readonly maxBytes?: number;
  /** Per file, as bytes arrive, and once more per weights file when it has been converted. */
  readonly onProgress?: (event: LoadProgress) => void;
}

/** Options of {@link loadModel}: the config and size limits plus the runtime to build the model on. */
export interface LoadModelOptions extends LoadConfigOptions {
  /** The runtime whose adapters the model's LoRA layers register with. */
  readonly runtime: LoRARuntime;
}

/** What {@link loadModel} returns. */
export interface LoadedModel {
  /** The model, of the config's architecture class (e.g. {@link LlamaForCausalLM}); the caller disposes it. */
  readonly model: CausalLM;
  /** The parsed config.json (the same object as `model.config`). */
  readonly config: ModelConfig;
}

const CONFIG_MAX_BYTES = 4 * 2 ** 20;
const INDEX_MAX_BYTES = 16 * 2 ** 20;
/** Room for a safetensors header and the small tensors transformers ignores, on top of the weights. */
const SHARD_SLACK_BYTES = 64 * 2 ** 20;

const stripCode = (err: unknown) => String((err as Error)?.message ?? describeValue(err)).replace(/^\[E_[A-Z_]+\] /, '');

function checkOptions(options: LoadConfigOptions): void {
  const { maxBytes } = options;
  if (maxBytes !== undefined && !(typeof maxBytes === 'number' && maxBytes > 0)) {
    throw new LoRAError('E_CONFIG', `maxBytes must be a positive number of bytes, got ${describeValue(maxBytes)}`);
  }
}

async function readRequired(
  source: FileSource,
  name: string,
  maxBytes: number,
  options: LoadConfigOptions,
  hint: string,
): Promise<Uint8Array> {
  const bytes = await source.read(name, { maxBytes, onProgress: options.onProgress });
  if (bytes === undefined) throw new LoRAError('E_NOT_FOUND', `${filePath(source.description, name)} does not exist; ${hint}`);
  return bytes;
}

async function readConfig(source: FileSource, options: LoadConfigOptions): Promise<ModelConfig> {
  const maxBytes = Math.min(options.maxBytes ?? CONFIG_MAX_BYTES, CONFIG_MAX_BYTES);
  const bytes = await readRequired(
    source,
    'config.json',
    maxBytes,
    options,
    'expected a Hugging Face model (config.json + safetensors weights)',
  );
  const from = filePath(source.description, 'config.json');
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new LoRAError('E_FORMAT', `${from} is not UTF-8 text`);
  }
  return parseModelConfig(text, from, options);
}

/** Reads and validates `config.json` only. */
export async function loadModelConfig(source: ModelSource, options: LoadConfigOptions = {}): Promise<ModelConfig> {
  checkOptions(options);
  return readConfig(toFileSource(source), options);
}

/** Rethrows a LoRAError about a file's contents with the file's path in front. */
function inFile<T>(where: string, f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (!isLoRAError(err)) throw err;
    throw new LoRAError(err.code, `${where}: ${stripCode(err)}`, { cause: err });
  }
}

/**
 * Collects a checkpoint's tensors as owned float32 arrays, one weights file at a time, each tensor
 * decoded straight into the array `WeightDestinations` gives it (F16/BF16/F64 converted to float32
 * on the way) and checked against the config. A source that can read at offsets (`open`: a local
 * directory) has each file's header read and validated first, then each tensor read into its
 * array: no file is ever held whole (peak memory: the float32 weights plus 4 MB), and ignored
 * tensors are not read at all. Any other source hands over whole files, parsed by core's
 * `parseSafetensors` and dropped before the next one is read (peak: the weights plus one file).
 */
class WeightCollector {
  readonly weights = new Map<string, Float32Array>();
  readonly #source: FileSource;
  readonly #config: ModelConfig;
  readonly #options: LoadConfigOptions;
  readonly #expected: ReadonlyMap<string, readonly number[]>;
  readonly #maxBytes: number;
  readonly #destinations: WeightDestinations;
  /** lm_head.weight stored although the embeddings are tied: checked against the embedding at the end. */
  #tiedHead: { data: Float32Array; file: string } | undefined;

  constructor(source: FileSource, config: ModelConfig, options: LoadConfigOptions) {
    this.#source = source;
    this.#config = config;
    this.#options = options;
    this.#expected = new Map(checkpointTensors(config).map((t) => [t.name, t.shape]));
    this.#maxBytes = options.maxBytes ?? modelFloat32Bytes(config) + SHARD_SLACK_BYTES;
    this.#destinations = new WeightDestinations(config);
  }

  async collect(): Promise<Map<string, Float32Array>> {
    if (await this.#weightsFile(SAFE_WEIGHTS_NAME, undefined)) {
      this.#checkComplete(() => filePath(this.#source.description, SAFE_WEIGHTS_NAME));
    } else {
      await this.#collectShards();
    }
    this.#checkTiedHead();
    return this.weights;
  }

  async #collectShards(): Promise<void> {
    const source = this.#source;
    const indexPath = filePath(source.description, SAFE_WEIGHTS_INDEX_NAME);
    const bytes = await source.read(SAFE_WEIGHTS_INDEX_NAME, {
      maxBytes: Math.min(this.#maxBytes, INDEX_MAX_BYTES),
      onProgress: this.#options.onProgress,
    });
    if (bytes === undefined) {
      throw new LoRAError(
        'E_NOT_FOUND',
        `${source.description} has neither ${SAFE_WEIGHTS_NAME} nor ${SAFE_WEIGHTS_INDEX_NAME}; expected safetensors weights (pickled pytorch_model.bin checkpoints are not read: convert them to safetensors)`,
      );
    }
    const index = parseCheckpointIndex(bytes, indexPath);
    for (const [name, shard] of index.weightMap) {
      if (!this.#expected.has(name) && !isIgnoredTensor(name) && !this.#isTiedHead(name))
        this.#unexpected(name, `${indexPath} (weight_map → ${shard})`);
    }
    for (const [name, shape] of this.#expected) {
      if (!index.weightMap.has(name)) {
        throw new LoRAError('E_FORMAT', `${indexPath}: weight_map does not list ${name} (expected shape [${shape.join(', ')}])`);
      }
    }
    const needed = new Set([...index.weightMap].filter(([name]) => !isIgnoredTensor(name)).map(([, file]) => file));
    const wanted = index.shards.filter((s) => needed.has(s));
    // One shard per call: when a call returns, nothing of its file is reachable any more.
    for (const shard of wanted) {
      if (!(await this.#weightsFile(shard, index.weightMap))) {
        throw new LoRAError(
          'E_NOT_FOUND',
          `${filePath(source.description, shard)} does not exist; ${SAFE_WEIGHTS_INDEX_NAME} lists it as a shard`,
        );
      }
    }
    this.#checkComplete(
      (name) => `${filePath(source.description, index.weightMap.get(name) as string)} (where ${SAFE_WEIGHTS_INDEX_NAME} puts it)`,
    );
  }

  /** Reads, checks and keeps every tensor of one weights file; false when the source has no such file. */
  async #weightsFile(file: string, weightMap: ReadonlyMap<string, string> | undefined): Promise<boolean> {
    const options = { maxBytes: this.#maxBytes, onProgress: this.#options.onProgress };
    if (this.#source.open !== undefined) {
      const opened = await this.#source.open(file, options);
      if (opened === undefined) return false;
      try {
        await this.#convertOpened(file, opened, weightMap);
      } finally {
        await opened.close();
      }
      return true;
    }
    const bytes = await this.#source.read(file, options);
    if (bytes === undefined) return false;
    this.#convertBytes(file, bytes, weightMap);
    return true;
  }

  /** A whole file in memory: parsed by core, each expected tensor decoded into its destination. */
  #convertBytes(file: string, bytes: Uint8Array, weightMap: ReadonlyMap<string, string> | undefined): void {
    const where = filePath(this.#source.description, file);
    // A tensor stored twice gets no destination the second time: the checks below refuse it.
    const output = (name: string, t: { shape: readonly number[] }) =>
      this.weights.has(name) ? undefined : this.#destinations.for(name, t.shape);
    const { tensors } = inFile(where, () => parseSafetensors(bytes, { output }));
    for (const [name, tensor] of Object.entries(tensors)) {
      const kind = this.#check(where, file, weightMap, name, tensor.shape);
      if (kind === 'skip') continue;
      // A view into the file's buffer (a tensor that got no destination) would keep the whole file alive: copy it out.
      this.#keep(kind, name, tensor.data.buffer === bytes.buffer ? tensor.data.slice() : tensor.data, where);
    }
    const size = bytes.byteLength;
    this.#options.onProgress?.({ file, loaded: size, total: size });
  }

  /** A file read at offsets: its header first (validated as `parseSafetensors` would), then each tensor it needs. */
  async #convertOpened(file: string, opened: RandomAccessFile, weightMap: ReadonlyMap<string, string> | undefined): Promise<void> {
    const where = filePath(this.#source.description, file);
    const { size } = opened;
    const head = new Uint8Array(Math.min(8, size));
    await opened.read(head, 0);
    const headerLength = inFile(where, () => readSafetensorsHeaderLength(head, size));
    const prefix = new Uint8Array(8 + headerLength);
    await opened.read(prefix, 0);
    const layout: SafetensorsLayout = inFile(where, () => parseSafetensorsLayout(prefix, size));
    const dtypes = inFile(where, () => layout.entries.map((e) => decodableDType(e)));
    const reads: (TensorRead & { kind: 'tied' | 'weight'; name: string })[] = [];
    layout.entries.forEach((e, i) => {
      const kind = this.#check(where, file, weightMap, e.name, e.shape);
      if (kind === 'skip') return; // not even read
      const out = kind === 'tied' ? new Float32Array(elements(e.shape)) : (this.#destinations.for(e.name, e.shape) as Float32Array);
      reads.push({ kind, name: e.name, position: layout.dataStart + e.begin, dtype: dtypes[i] as TensorRead['dtype'], out });
    });
    // In file order: the reads move forward through the file.
    reads.sort((a, b) => a.position - b.position);
    let loaded = prefix.byteLength;
    await readTensors(opened, reads, (bytes) => {
      loaded += bytes;
      this.#options.onProgress?.({ file, loaded, total: size });
    });
    for (const r of reads) this.#keep(r.kind, r.name, r.out, where);
    this.#options.onProgress?.({ file, loaded: size, total: size });
  }

  /**
   * What to do with a tensor a file holds: skip it (transformers ignores it too), keep it as a
   * weight, or as the stored lm_head of tied embeddings; anything else is refused here, before
   * its data is used: a tensor the index puts elsewhere, an unexpected or repeated one, a wrong shape.
   */
  #check(
    where: string,
    file: string,
    weightMap: ReadonlyMap<string, string> | undefined,
    name: string,
    found: readonly number[],
  ): 'skip' | 'tied' | 'weight' {
    if (isIgnoredTensor(name)) return 'skip';
    if (weightMap !== undefined && weightMap.get(name) !== file) {
      const listed = weightMap.get(name);
      throw new LoRAError(
        'E_FORMAT',
        `${where} holds ${name}, but ${SAFE_WEIGHTS_INDEX_NAME} ${listed === undefined ? 'does not list it' : `puts it in ${listed}`}`,
      );
    }
    const tied = this.#isTiedHead(name);
    const shape = tied ? [this.#config.vocabSize, this.#config.hiddenSize] : this.#expected.get(name);
    if (shape === undefined) this.#unexpected(name, where);
    if (this.weights.has(name) || (tied && this.#tiedHead))
      throw new LoRAError('E_FORMAT', `${where}: ${name} appears twice in the checkpoint`);
    checkShape(name, found, shape as readonly number[], where);
    return tied ? 'tied' : 'weight';
  }

  #keep(kind: 'tied' | 'weight', name: string, data: Float32Array, where: string): void {
    if (kind === 'tied') this.#tiedHead = { data, file: where };
    else this.weights.set(name, data);
  }

  #isTiedHead(name: string): boolean {
    return name === `${LM_HEAD}.weight` && this.#config.tieWordEmbeddings;
  }

  #unexpected(name: string, where: string): never {
    throw new LoRAError(
      'E_FORMAT',
      `${where}: unexpected tensor ${JSON.stringify(name.slice(0, 120))}: not a weight of a ${this.#config.architecture} with this config.json (${this.#expected.size} weights expected, e.g. ${[...this.#expected.keys()][1] ?? ''})`,
    );
  }

  #checkComplete(whereOf: (name: string) => string): void {
    for (const [name, shape] of this.#expected) {
      if (!this.weights.has(name))
        throw new LoRAError('E_FORMAT', `${whereOf(name)}: missing tensor ${name} (expected shape [${shape.join(', ')}])`);
    }
  }

  /**
   * transformers ties lm_head to the embedding after loading; which of two different stored
   * tables ends up in use has changed between its versions. Equal tables are unambiguous (the
   * stored lm_head is dropped); different ones are refused rather than guessed.
   */
  #checkTiedHead(): void {
    const head = this.#tiedHead;
    if (head === undefined) return;
    const embed = this.weights.get('model.embed_tokens.weight') as Float32Array;
    const differs = head.data.findIndex((v, i) => !Object.is(v, embed[i]));
    if (differs >= 0) {
      throw new LoRAError(
        'E_FORMAT',
        `${head.file}: lm_head.weight differs from model.embed_tokens.weight (first at element ${differs}) although config.json sets tie_word_embeddings; set it to false to use both, or drop lm_head.weight`,
      );
    }
    this.#tiedHead = undefined;
  }
}

function checkShape(name: string, found: readonly number[], expected: readonly number[], where: string): void {
  if (found.length !== expected.length || found.some((d, i) => d !== expected[i])) {
    throw new LoRAError('E_FORMAT', `${where}: ${name} has shape [${found.join(', ')}]; config.json implies [${expected.join(', ')}]`);
  }
}

/**
 * Loads a Hugging Face checkpoint (config.json + model.safetensors, or the shards of
 * model.safetensors.index.json) into a `CausalLM` on `runtime`. Weights stored as F32, F16, BF16
 * (or F64) become float32. Every expected tensor must be present with its exact shape; unexpected
 * tensors are refused except those transformers ignores too. Peak memory stays near the float32
 * model plus the largest weights file: files are read one at a time and the packed q/k/v and
 * gate/up weights are built layer by layer.
 */
export async function loadModel(source: ModelSource, options: LoadModelOptions): Promise<LoadedModel> {
  checkOptions(options ?? {});
  const runtime = options?.runtime;
  if (typeof runtime?.adapters?.addLayer !== 'function') {
    throw new LoRAError('E_CONFIG', `loadModel needs options.runtime (from createLoRA), got ${describeValue(runtime)}`);
  }
  const files = toFileSource(source);
  const config = await readConfig(files, options);
  const weights = await new WeightCollector(files, config, options).collect();
  const model = createCausalLM(runtime, config, weights, { releaseWeights: true });
  return { model, config };
}
