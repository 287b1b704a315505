import { describeValue, LoRAError } from '../errors.js';
import { readLocalFile } from '../files.js';
import { type ParsedSafetensors, parseSafetensors, type SafetensorsTensor } from '../formats/safetensors.js';
import { isNode, nodeBuiltins } from '../node.js';
import { type AdapterModuleWeights, checkAdapterId, createAdapter, type LoRAAdapter } from './adapter.js';
import { isTargeted, moduleScale, type PeftAdapterConfig, parsePeftConfig } from './peft-config.js';

/**
 * Hugging Face PEFT adapters: adapter_config.json + adapter_model.safetensors with keys such as
 * `base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight`. q/k/v and gate/up map onto
 * packed layers by module name (the layer lists one module per slice).
 */

/** A {@link LoRAAdapter} loaded from PEFT files, with the config and file metadata it was loaded with. */
export interface PeftAdapter extends LoRAAdapter {
  /** adapter_config.json as parsed: the fields that decided each module's rank, scale and targeting. */
  readonly config: PeftAdapterConfig;
  /** The safetensors header's `__metadata__` (a frozen copy; `{}` when the file has none). */
  readonly metadata: Readonly<Record<string, string>>;
}

/** Largest adapter_config.json read from a directory (real ones are a few KB; rank_pattern per module, ~100 KB). */
const MAX_ADAPTER_CONFIG_BYTES = 4 * 1024 * 1024;
/** Default bound on adapter_model.safetensors read from a directory; `maxBytes` raises it. */
const DEFAULT_MAX_ADAPTER_BYTES = 2 * 1024 ** 3;

interface Pair {
  kind: 'linear' | 'embedding';
  A?: SafetensorsTensor;
  B?: SafetensorsTensor;
  /** DoRA's `lora_magnitude_vector` `[out]`. */
  M?: SafetensorsTensor;
}

/**
 * PEFT saves the base weights of embed_tokens / lm_head next to the adapter when it adapts them
 * (`…embed_tokens.base_layer.weight`); they are the base model's, not the adapter's. vLLM skips
 * exactly these (`vllm/lora/utils.py` `is_base_embeddding_weights`), and so do we.
 */
const BASE_EMBEDDING_SUFFIXES = ['.embed_tokens.base_layer.weight', '.lm_head.base_layer.weight'];

type Classified = { module: string; kind: 'linear' | 'embedding'; which: 'A' | 'B' } | { module: string; which: 'M' } | 'skip';

/**
 * Where DoRA's magnitude vector sits in a split key, or -1: `<module>.lora_magnitude_vector` (what
 * PEFT's `get_peft_model_state_dict` saves), `….lora_magnitude_vector.weight` or
 * `….lora_magnitude_vector.<adapter name>.weight` (the in-memory names, before that rename).
 */
function magnitudeAt(parts: readonly string[]): number {
  const n = parts.length;
  if (parts[n - 1] === 'lora_magnitude_vector') return n - 1;
  if (parts[n - 1] === 'weight' && parts[n - 2] === 'lora_magnitude_vector') return n - 2;
  if (parts[n - 1] === 'weight' && parts[n - 3] === 'lora_magnitude_vector') return n - 3;
  return -1;
}

/**
 * A tensor name → module, kind and A/B, by splitting on dots (vLLM `parse_fine_tuned_lora_name`):
 * `<module>.lora_A.weight`, `<module>.lora_A.<adapter name>.weight` (older PEFT),
 * `<module>.lora_embedding_A[.<adapter name>]`; the `base_model.model.` prefix is optional.
 * No regular expression runs on names from the file.
 */
function classify(key: string, file: string): Classified {
  if (BASE_EMBEDDING_SUFFIXES.some((s) => key.endsWith(s))) return 'skip';
  const name = key.startsWith('base_model.model.') ? key.slice('base_model.model.'.length) : key;
  const parts = name.split('.');
  const n = parts.length;
  const at = (i: number) => parts[n + i] as string;
  if (n >= 3 && at(-1) === 'weight' && (at(-2) === 'lora_A' || at(-2) === 'lora_B')) {
    return { module: parts.slice(0, -2).join('.'), kind: 'linear', which: at(-2) === 'lora_A' ? 'A' : 'B' };
  }
  if (n >= 4 && at(-1) === 'weight' && (at(-3) === 'lora_A' || at(-3) === 'lora_B')) {
    return { module: parts.slice(0, -3).join('.'), kind: 'linear', which: at(-3) === 'lora_A' ? 'A' : 'B' };
  }
  for (const back of [-1, -2]) {
    if (n + back >= 1 && (at(back) === 'lora_embedding_A' || at(back) === 'lora_embedding_B')) {
      return { module: parts.slice(0, back).join('.'), kind: 'embedding', which: at(back) === 'lora_embedding_A' ? 'A' : 'B' };
    }
  }
  const magnitude = magnitudeAt(parts);
  if (magnitude >= 1) return { module: parts.slice(0, magnitude).join('.'), which: 'M' };
  if (at(-1) === 'bias' && parts.some((p) => p === 'lora_B' || p === 'lora_A'))
    throw new LoRAError('E_UNSUPPORTED', `${file}: ${describeValue(key)} is a LoRA bias; only bias "none" is supported`);
  throw new LoRAError(
    'E_FORMAT',
    `${file}: unexpected tensor ${describeValue(key)}; expected <module>.lora_A.weight / lora_B.weight or lora_embedding_A / lora_embedding_B`,
  );
}

function moduleWeights(module: string, pair: Pair, config: PeftAdapterConfig, file: string): AdapterModuleWeights {
  const format = (message: string): never => {
    throw new LoRAError('E_FORMAT', `${file}: module ${module}: ${message}`);
  };
  const { A, B, M, kind } = pair;
  if (!A || !B) return format(`has lora_${A ? 'A' : 'B'} but no lora_${A ? 'B' : 'A'}`);
  if (A.shape.length !== 2 || B.shape.length !== 2) format(`lora_A [${A.shape}] and lora_B [${B.shape}] must be matrices`);
  const { rank, scale } = moduleScale(config, module);
  const [aRows, inFeatures] = A.shape as [number, number];
  const [outFeatures, bCols] = B.shape as [number, number];
  if (aRows !== rank || bCols !== rank) {
    format(`lora_A [${A.shape}] and lora_B [${B.shape}] do not have the rank ${rank} that adapter_config.json gives it (r / rank_pattern)`);
  }
  if (inFeatures < 1 || outFeatures < 1) format(`lora_A [${A.shape}] and lora_B [${B.shape}] have an empty dimension`);
  if (!isTargeted(config, module)) format(`holds weights but is not adapted by target_modules ${describeValue(config.targetModules)}`);
  const weights = { name: module, kind, rank, scale, a: A.data, b: B.data, inFeatures, outFeatures };
  if (!config.useDora) return weights;
  return { ...weights, magnitude: doraMagnitude(M, outFeatures, format) };
}

/** DoRA: `use_dora` adapters carry `lora_magnitude_vector` `[out]` in every module PEFT adapted (PEFT `lora/layer.py` `dora_init`). */
function doraMagnitude(M: SafetensorsTensor | undefined, outFeatures: number, format: (message: string) => never): Float32Array {
  if (M === undefined) return format('adapter_config.json sets use_dora but the module has no lora_magnitude_vector');
  if (M.shape.length !== 1 || M.shape[0] !== outFeatures)
    format(
      `lora_magnitude_vector is [${M.shape}]; DoRA needs one value per output feature, [${outFeatures}] (lora_B is [${outFeatures}, r])`,
    );
  return M.data;
}

/** The two files of a PEFT adapter, already in memory (fetched in a browser, read from anywhere), for {@link loadPeftAdapter}. */
export interface PeftAdapterInput {
  /** The adapter's name in the runtime (what requests ask for). */
  id: string;
  /** adapter_config.json: its text or the parsed object. */
  config: unknown;
  /** adapter_model.safetensors: bytes (an ArrayBuffer from `fetch().arrayBuffer()` too) or already parsed. */
  safetensors: Uint8Array | ArrayBuffer | ParsedSafetensors;
  /** Where the files came from (a directory, a URL, a Hub repo), for error messages. */
  source?: string;
}

function readInput(input: PeftAdapterInput): PeftAdapterInput {
  if (input === null || typeof input !== 'object') {
    throw new LoRAError('E_CONFIG', `loadPeftAdapter expects { id, config, safetensors }, got ${describeValue(input)}`);
  }
  try {
    return { id: input.id, config: input.config, safetensors: input.safetensors, source: input.source };
  } catch (err) {
    throw new LoRAError('E_CONFIG', `loadPeftAdapter: its argument could not be read: ${describeValue((err as Error)?.message)}`);
  }
}

/** Prefixes an error with where the adapter came from, keeping its code. */
function withSource<T>(source: string | undefined, run: () => T): T {
  try {
    return run();
  } catch (err) {
    if (source === undefined || !(err instanceof LoRAError)) throw err;
    throw new LoRAError(err.code, `${source}: ${err.message.replace(/^\[[A-Z_]+\] /, '')}`, { cause: err });
  }
}

/** A PEFT adapter from its two files' contents (config as JSON text or object, safetensors bytes or parsed). */
export function loadPeftAdapter(input: PeftAdapterInput): PeftAdapter {
  const { id, config: rawConfig, safetensors, source } = readInput(input);
  checkAdapterId(id);
  return withSource(source, () => {
    const config = parsePeftConfig(rawConfig);
    let parsed: ParsedSafetensors;
    if (safetensors instanceof Uint8Array || safetensors instanceof ArrayBuffer) parsed = parseSafetensors(safetensors);
    else if (safetensors !== null && typeof safetensors === 'object' && typeof (safetensors as ParsedSafetensors).tensors === 'object')
      parsed = safetensors as ParsedSafetensors;
    else
      throw new LoRAError(
        'E_CONFIG',
        `loadPeftAdapter: safetensors must be the file's bytes (Uint8Array or ArrayBuffer) or parseSafetensors' result, got ${describeValue(safetensors)}`,
      );
    const file = 'adapter_model.safetensors';
    const pairs = new Map<string, Pair>();
    const magnitudes = new Map<string, SafetensorsTensor>();
    for (const [key, tensor] of Object.entries(parsed.tensors)) {
      const c = classify(key, file);
      if (c === 'skip') continue;
      if (c.which === 'M') {
        if (magnitudes.has(c.module))
          throw new LoRAError('E_FORMAT', `${file}: module ${c.module} has lora_magnitude_vector twice (${describeValue(key)})`);
        magnitudes.set(c.module, tensor);
        continue;
      }
      const pair = pairs.get(c.module) ?? { kind: c.kind };
      if (pair.kind !== c.kind) throw new LoRAError('E_FORMAT', `${file}: module ${c.module} mixes linear and embedding LoRA weights`);
      if (pair[c.which]) throw new LoRAError('E_FORMAT', `${file}: module ${c.module} has lora_${c.which} twice (${describeValue(key)})`);
      pair[c.which] = tensor;
      pairs.set(c.module, pair);
    }
    for (const [module, magnitude] of magnitudes) {
      const pair = pairs.get(module);
      if (pair === undefined)
        throw new LoRAError('E_FORMAT', `${file}: module ${module} has a lora_magnitude_vector but no lora_A / lora_B`);
      if (!config.useDora)
        throw new LoRAError(
          'E_FORMAT',
          `${file}: module ${module} has a DoRA lora_magnitude_vector but adapter_config.json does not set use_dora`,
        );
      pair.M = magnitude;
    }
    if (pairs.size === 0) throw new LoRAError('E_FORMAT', `${file}: holds no LoRA weights`);
    const modules = [...pairs].map(([module, pair]) => moduleWeights(module, pair, config, file));
    const extra = { config, metadata: Object.freeze({ ...parsed.metadata }) };
    const invocationTokens = config.aloraInvocationTokens;
    return createAdapter(id, modules, invocationTokens === null ? extra : { ...extra, invocationTokens });
  });
}

/** Options of {@link loadPeftAdapterFromDir}; a plain string given there is the id. */
export interface PeftDirOptions {
  /** The adapter's id (default: the directory's name). */
  id?: string;
  /** Largest adapter_model.safetensors read (default 2 GiB). */
  maxBytes?: number;
}

/**
 * Node: reads `<dir>/adapter_config.json` and `<dir>/adapter_model.safetensors`. Both must be
 * regular files within their size bounds (a FIFO or a device would block a plain read forever).
 * Pickled `adapter_model.bin` files are refused (unpickling runs code); convert them to safetensors.
 */
export async function loadPeftAdapterFromDir(dir: string, options: string | PeftDirOptions = {}): Promise<PeftAdapter> {
  if (!isNode()) {
    throw new LoRAError('E_UNSUPPORTED', 'loadPeftAdapterFromDir needs Node.js; in a browser fetch the two files and call loadPeftAdapter');
  }
  if (typeof dir !== 'string' || dir.length === 0) {
    throw new LoRAError('E_CONFIG', `loadPeftAdapterFromDir expects a directory path, got ${describeValue(dir)}`);
  }
  const opts: PeftDirOptions = typeof options === 'string' ? { id: options } : (options ?? {});
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_ADAPTER_BYTES;
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1)
    throw new LoRAError('E_CONFIG', `maxBytes must be a positive integer, got ${describeValue(maxBytes)}`);
  const { fs, path } = await nodeBuiltins('fs', 'path');
  const file = (name: string) => path.join(dir, name);
  const config = await readLocalFile(file('adapter_config.json'), { maxBytes: MAX_ADAPTER_CONFIG_BYTES, what: 'adapter_config.json' });
  if (config === undefined)
    throw new LoRAError('E_NOT_FOUND', `${file('adapter_config.json')} does not exist; expected a PEFT adapter directory`);
  const weights = await readLocalFile(file('adapter_model.safetensors'), { maxBytes, what: 'adapter_model.safetensors' });
  if (weights === undefined) {
    const pickle = await fs.lstat(file('adapter_model.bin')).then(
      () => true,
      () => false,
    );
    if (pickle) {
      throw new LoRAError(
        'E_UNSUPPORTED',
        `${dir} has adapter_model.bin (a pickle); convert it to safetensors first, e.g. in Python: PeftModel.from_pretrained(base, dir).save_pretrained(out, safe_serialization=True)`,
      );
    }
    throw new LoRAError('E_NOT_FOUND', `${file('adapter_model.safetensors')} does not exist`);
  }
  return loadPeftAdapter({
    id: opts.id ?? path.basename(path.resolve(dir)),
    config: new TextDecoder().decode(config),
    safetensors: weights,
    source: dir,
  });
}
