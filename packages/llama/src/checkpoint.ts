import { describeValue, isLoRAError, LoRAError, type LoRARuntime, parseSafetensors, type SafetensorsTensor } from '@lora/core';
import { parseCheckpointIndex, SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME } from './checkpoint-index.js';
import { type ModelConfig, type ParseConfigOptions, parseModelConfig } from './config.js';
import { type CausalLM, createCausalLM } from './model.js';
import { checkpointTensors, isIgnoredTensor, LM_HEAD, modelFloat32Bytes } from './modules.js';
import type { FileSource, LoadProgress } from './source.js';
import { filePath } from './sources/names.js';
import { type ModelSource, toFileSource } from './sources/resolve.js';

export interface LoadConfigOptions extends ParseConfigOptions {
  /** Largest file the loader reads (default: config.json 4 MiB; weights the float32 model size + 64 MiB). */
  readonly maxBytes?: number;
  /** Per file, as bytes arrive, and once more per weights file when it has been converted. */
  readonly onProgress?: (event: LoadProgress) => void;
}

export interface LoadModelOptions extends LoadConfigOptions {
  /** The runtime whose adapters the model's LoRA layers register with. */
  readonly runtime: LoRARuntime;
}

export interface LoadedModel {
  readonly model: CausalLM;
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

/**
 * Collects a checkpoint's tensors as owned float32 arrays, one weights file at a time: each file is
 * read, parsed (core's `parseSafetensors` converts F16/BF16/F64 to float32), its tensors checked
 * against the config and copied out of the file's buffer where they are views of it, and the file
 * is dropped before the next one is read. Peak memory: the float32 weights plus one file.
 */
class WeightCollector {
  readonly weights = new Map<string, Float32Array>();
  readonly #source: FileSource;
  readonly #config: ModelConfig;
  readonly #options: LoadConfigOptions;
  readonly #expected: ReadonlyMap<string, readonly number[]>;
  readonly #maxBytes: number;
  /** lm_head.weight stored although the embeddings are tied: checked against the embedding at the end. */
  #tiedHead: { data: Float32Array; file: string } | undefined;

  constructor(source: FileSource, config: ModelConfig, options: LoadConfigOptions) {
    this.#source = source;
    this.#config = config;
    this.#options = options;
    this.#expected = new Map(checkpointTensors(config).map((t) => [t.name, t.shape]));
    this.#maxBytes = options.maxBytes ?? modelFloat32Bytes(config) + SHARD_SLACK_BYTES;
  }

  async collect(): Promise<Map<string, Float32Array>> {
    const single = await this.#source.read(SAFE_WEIGHTS_NAME, { maxBytes: this.#maxBytes, onProgress: this.#options.onProgress });
    if (single !== undefined) {
      this.#convert(SAFE_WEIGHTS_NAME, single, undefined);
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
    for (const shard of wanted) await this.#collectShard(shard, index.weightMap);
    this.#checkComplete(
      (name) => `${filePath(source.description, index.weightMap.get(name) as string)} (where ${SAFE_WEIGHTS_INDEX_NAME} puts it)`,
    );
  }

  async #collectShard(shard: string, weightMap: ReadonlyMap<string, string>): Promise<void> {
    const bytes = await readRequired(this.#source, shard, this.#maxBytes, this.#options, `${SAFE_WEIGHTS_INDEX_NAME} lists it as a shard`);
    this.#convert(shard, bytes, weightMap);
  }

  /** Checks and keeps every tensor of one weights file. */
  #convert(file: string, bytes: Uint8Array, weightMap: ReadonlyMap<string, string> | undefined): void {
    const where = filePath(this.#source.description, file);
    let tensors: Record<string, SafetensorsTensor>;
    try {
      tensors = parseSafetensors(bytes).tensors;
    } catch (err) {
      if (!isLoRAError(err)) throw err;
      throw new LoRAError(err.code, `${where}: ${stripCode(err)}`, { cause: err });
    }
    for (const [name, tensor] of Object.entries(tensors)) {
      if (isIgnoredTensor(name)) continue;
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
      checkShape(name, tensor.shape, shape as readonly number[], where);
      // A view into the file's buffer would keep the whole file alive: copy it out. Decoded F16/BF16 data is already ours.
      const data = tensor.data.buffer === bytes.buffer ? tensor.data.slice() : tensor.data;
      if (tied) this.#tiedHead = { data, file: where };
      else this.weights.set(name, data);
    }
    const size = bytes.byteLength;
    this.#options.onProgress?.({ file, loaded: size, total: size });
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
