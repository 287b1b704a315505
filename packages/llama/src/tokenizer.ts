import { Tokenizer as HFTokenizer } from '@huggingface/tokenizers';
import { describeValue, LoRAError } from '@lora/core';
import { parseJsonObject, readJsonObject, readText } from './read-json.js';
import type { FileSource, LoadProgress } from './source.js';
import { type GenerationSettings, parseGenerationConfig, parseTokenizerConfig, type TokenizerSettings } from './tokenizer-config.js';

/** Options of {@link Tokenizer.encode}. */
export interface EncodeOptions {
  /** Add the special tokens the tokenizer adds around a text (BOS for Llama), as transformers does by default. Default true. */
  readonly addSpecialTokens?: boolean;
}

/** Options of {@link Tokenizer.decode}, after transformers' `decode` arguments. */
export interface DecodeOptions {
  /** Leave out special tokens (`<|im_end|>`, BOS, EOS, additional special tokens). Default false. */
  readonly skipSpecialTokens?: boolean;
  /** transformers' `clean_up_tokenization_spaces` (" ," → ","...). Default: tokenizer_config.json's value, else false. */
  readonly cleanUpTokenizationSpaces?: boolean;
}

/** A Hugging Face fast tokenizer (tokenizer.json) with the settings transformers reads next to it. */
export interface Tokenizer {
  /** Where it was loaded from, for messages. */
  readonly description: string;
  /** Size of the id space: the largest token id (added tokens included) + 1, like `len(tokenizer)`. */
  readonly vocabSize: number;
  /** Id of tokenizer_config.json's `bos_token`, else generation_config.json's `bos_token_id`; undefined when neither is set. */
  readonly bosTokenId: number | undefined;
  /** EOS ids: tokenizer_config.json's eos_token and every id of generation_config.json's eos_token_id. */
  readonly eosTokenIds: ReadonlySet<number>;
  /** Id of tokenizer_config.json's `pad_token`; undefined when it is unset or not in the vocabulary. */
  readonly padTokenId: number | undefined;
  /** `bos_token`, `eos_token`, `unk_token`, `pad_token`... as strings, where set: what chat templates see. */
  readonly specialTokens: Readonly<Record<string, string>>;
  /** tokenizer_config.json's `additional_special_tokens` as strings (chat templates see them as `additional_special_tokens`). */
  readonly additionalSpecialTokens: readonly string[];
  /** Chat templates by name (`default` for a single one); empty when the model has none. */
  readonly chatTemplates: ReadonlyMap<string, string>;
  /** The file the chat templates came from (`tokenizer_config.json` or `chat_template.jinja`). */
  readonly chatTemplateFile: string;
  /**
   * The token ids of a text, as transformers' `encode`: special tokens added unless
   * `addSpecialTokens` is false (for Llama-class tokenizers from `add_bos_token` / `add_eos_token`,
   * otherwise by tokenizer.json's post-processor). Throws E_FORMAT for a piece that maps to no id.
   */
  encode(text: string, options?: EncodeOptions): number[];
  /** The text of token ids; ids that have no token (a model's padded vocabulary) decode to nothing. */
  decode(ids: ArrayLike<number>, options?: DecodeOptions): string;
  /** The id of a token string (added tokens included), or undefined when the vocabulary has no such token. */
  tokenToId(token: string): number | undefined;
  /** The token string of an id (e.g. `▁the`, `Ġthe`: the vocabulary's form, not decoded text), or undefined. */
  idToToken(id: number): string | undefined;
}

/** Options of {@link loadTokenizer}. */
export interface LoadTokenizerOptions {
  /** Largest tokenizer.json to read (default 64 MiB; Gemma's is 33 MB). */
  readonly maxBytes?: number;
  /** Called as the bytes of each tokenizer file arrive. */
  readonly onProgress?: (event: LoadProgress) => void;
}

/** The files of a tokenizer, already read: tokenizer.json's text and the parsed JSON of the others. */
export interface TokenizerFiles {
  readonly tokenizerJson: string;
  readonly tokenizerConfig?: Record<string, unknown>;
  readonly generationConfig?: Record<string, unknown>;
  /** chat_template.jinja's text. */
  readonly chatTemplate?: string;
}

const DEFAULT_MAX_TOKENIZER_BYTES = 64 * 1024 * 1024;
const MAX_CONFIG_BYTES = 16 * 1024 * 1024; // Gemma-3's tokenizer_config.json is 1.2 MB of added tokens
const MAX_SMALL_FILE_BYTES = 1024 * 1024;
const MAX_TOKEN_ID = 2 ** 24;
const MODEL_TYPES = ['BPE', 'WordPiece', 'Unigram', 'WordLevel'];

/**
 * Tokenizer classes whose fast tokenizer rebuilds its post-processor from `add_bos_token` /
 * `add_eos_token` (transformers `models/llama/tokenization_llama_fast.py` and
 * `models/gemma/tokenization_gemma_fast.py` `update_post_processor`, defaults bos on, eos off).
 * Every other class uses tokenizer.json's post-processor as it is (Llama-3 and Qwen2 are
 * `PreTrainedTokenizerFast` / `Qwen2Tokenizer`: their BOS, if any, comes from tokenizer.json).
 */
const REBUILDS_POST_PROCESSOR = /^(?:Llama|CodeLlama|Gemma)Tokenizer(?:Fast)?$/;

/**
 * Loads tokenizer.json (required), tokenizer_config.json, generation_config.json and
 * chat_template.jinja (optional) from a source. A missing tokenizer.json is E_NOT_FOUND; a file
 * that cannot be parsed, or that @huggingface/tokenizers refuses, is E_FORMAT naming the file.
 */
export async function loadTokenizer(source: FileSource, options: LoadTokenizerOptions = {}): Promise<Tokenizer> {
  if (source === null || typeof source !== 'object' || typeof source.read !== 'function') {
    throw new LoRAError('E_CONFIG', `loadTokenizer expects a FileSource, got ${describeValue(source)}`);
  }
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_TOKENIZER_BYTES;
  if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0) {
    throw new LoRAError('E_CONFIG', `loadTokenizer: maxBytes must be a positive integer, got ${describeValue(maxBytes)}`);
  }
  const { onProgress } = options;
  // One file after the other: a Hub source pins the commit on its first read, so the files of one
  // tokenizer all come from the same commit.
  const tokenizerConfig = await readJsonObject(source, 'tokenizer_config.json', MAX_CONFIG_BYTES, onProgress);
  const tokenizerJson = await readText(source, 'tokenizer.json', maxBytes, onProgress);
  if (tokenizerJson === undefined) {
    throw new LoRAError(
      'E_NOT_FOUND',
      `${source.description}: tokenizer.json not found; expected a Hugging Face fast tokenizer (tokenizer.json, tokenizer_config.json). Slow-only tokenizers (tokenizer.model, vocab.json + merges.txt) are not supported: save one with transformers' AutoTokenizer.from_pretrained(...).save_pretrained(dir) to get tokenizer.json`,
    );
  }
  const generationConfig = await readJsonObject(source, 'generation_config.json', MAX_SMALL_FILE_BYTES, onProgress);
  const chatTemplate = await readText(source, 'chat_template.jinja', MAX_SMALL_FILE_BYTES, onProgress);
  return createTokenizer({ tokenizerJson, tokenizerConfig, generationConfig, chatTemplate }, source.description);
}

function checkTokenizerJson(json: Record<string, unknown>, what: string): Record<string, unknown> {
  const model = json.model;
  if (model === null || typeof model !== 'object' || Array.isArray(model)) {
    throw new LoRAError('E_FORMAT', `${what} has no "model" object; expected the tokenizer.json that the tokenizers library writes`);
  }
  // @huggingface/tokenizers takes any unknown type with a vocab for its "Legacy" model instead of
  // refusing it: check the type here.
  const type = (model as { type?: unknown }).type;
  if (type !== undefined && !MODEL_TYPES.includes(type as string)) {
    throw new LoRAError(
      'E_UNSUPPORTED',
      `${what}: model type ${describeValue(type)} is not supported; expected one of ${MODEL_TYPES.join(', ')}`,
    );
  }
  const { vocab, merges } = model as { vocab?: unknown; merges?: unknown };
  const vocabIsList = type === 'Unigram' || (type === undefined && Array.isArray(vocab));
  if (vocab === null || typeof vocab !== 'object' || Array.isArray(vocab) !== vocabIsList || (type === 'BPE' && !Array.isArray(merges))) {
    throw new LoRAError(
      'E_FORMAT',
      `${what}: a ${type ?? 'tokenizer'} model needs "vocab" (${vocabIsList ? 'a list' : 'an object'})${type === 'BPE' ? ' and "merges" (a list)' : ''}`,
    );
  }
  const added = json.added_tokens ?? [];
  if (!Array.isArray(added)) throw new LoRAError('E_FORMAT', `${what}: "added_tokens" must be a list, got ${describeValue(added)}`);
  added.forEach((token: unknown, i) => {
    const { id, content } = (token ?? {}) as { id?: unknown; content?: unknown };
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= MAX_TOKEN_ID || typeof content !== 'string') {
      throw new LoRAError('E_FORMAT', `${what}: added_tokens[${i}] must have an integer "id" below ${MAX_TOKEN_ID} and a "content" string`);
    }
  });
  // @huggingface/tokenizers requires these keys to be present; tokenizers writes them as null when unused.
  return { normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, ...json, added_tokens: added };
}

/**
 * The options object @huggingface/tokenizers reads. Two of its defaults differ from transformers
 * and are overridden: clean_up_tokenization_spaces (true there) and the WordLevel unknown token.
 */
function hfConfig(settings: TokenizerSettings, model: Record<string, unknown>): Record<string, unknown> {
  const config: Record<string, unknown> = {
    ...settings.specialTokens,
    additional_special_tokens: [...settings.additionalSpecialTokens],
    clean_up_tokenization_spaces: settings.cleanUpTokenizationSpaces,
  };
  // @huggingface/tokenizers 0.2.0 has no WordLevel model: it falls back to its "Legacy" model,
  // which takes the unknown token from tokenizer_config.json instead of tokenizer.json and yields
  // a null id for an unknown word when the config has none. The Rust WordLevel model
  // (tokenizers `models/wordlevel/mod.rs`) always uses the model's own unk_token.
  if (model.type === 'WordLevel' && typeof model.unk_token === 'string') config.unk_token = model.unk_token;
  return config;
}

/** A tokenizer from files already read; `description` names where they came from in messages. */
export function createTokenizer(files: TokenizerFiles, description: string): Tokenizer {
  const json = checkTokenizerJson(parseJsonObject(files.tokenizerJson, `${description}: tokenizer.json`), `${description}: tokenizer.json`);
  const settings = parseTokenizerConfig(files.tokenizerConfig ?? {}, `${description}: tokenizer_config.json`);
  const generation = parseGenerationConfig(files.generationConfig ?? {}, `${description}: generation_config.json`);
  let hf: HFTokenizer;
  try {
    hf = new HFTokenizer(json, hfConfig(settings, json.model as Record<string, unknown>));
  } catch (err) {
    throw new LoRAError(
      'E_FORMAT',
      `${description}: tokenizer.json cannot be loaded: ${String((err as Error)?.message ?? err).slice(0, 300)}`,
      {
        cause: err,
      },
    );
  }
  return new LoadedTokenizer(hf, settings, generation, files.chatTemplate, description);
}

class LoadedTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosTokenId: number | undefined;
  readonly eosTokenIds: ReadonlySet<number>;
  readonly padTokenId: number | undefined;
  readonly specialTokens: Readonly<Record<string, string>>;
  readonly additionalSpecialTokens: readonly string[];
  readonly chatTemplates: ReadonlyMap<string, string>;
  readonly chatTemplateFile: string;
  /** Set for Llama-class tokenizers: the tokens encode() adds itself instead of the post-processor. */
  readonly #wrap: { bos: number | undefined; eos: number | undefined } | undefined;
  readonly #hf: HFTokenizer;
  readonly #cleanUp: boolean;

  constructor(
    hf: HFTokenizer,
    settings: TokenizerSettings,
    generation: GenerationSettings,
    chatTemplate: string | undefined,
    readonly description: string,
  ) {
    this.#hf = hf;
    this.#cleanUp = settings.cleanUpTokenizationSpaces;
    let maxId = -1;
    for (const id of hf.get_vocab(true).values()) if (id > maxId) maxId = id;
    this.vocabSize = maxId + 1;
    const configFile = `${description}: tokenizer_config.json`;
    const idOf = (key: string, required: boolean): number | undefined => {
      const token = settings.specialTokens[key];
      if (token === undefined) return undefined;
      const id = hf.token_to_id(token);
      if (id === undefined && required) {
        throw new LoRAError('E_FORMAT', `${configFile}: ${key} ${describeValue(token)} is not in tokenizer.json's vocabulary`);
      }
      return id;
    };
    this.bosTokenId = idOf('bos_token', true) ?? generation.bosTokenId;
    const eos = new Set<number>();
    const configEos = idOf('eos_token', true);
    if (configEos !== undefined) eos.add(configEos);
    for (const id of generation.eosTokenIds) {
      if (id >= this.vocabSize) {
        throw new LoRAError(
          'E_FORMAT',
          `${description}: generation_config.json: eos_token_id ${id} is outside the vocabulary (${this.vocabSize} tokens)`,
        );
      }
      eos.add(id);
    }
    this.eosTokenIds = eos;
    this.padTokenId = idOf('pad_token', false);
    this.specialTokens = Object.freeze({ ...settings.specialTokens });
    this.additionalSpecialTokens = Object.freeze([...settings.additionalSpecialTokens]);
    this.chatTemplates = chatTemplate === undefined ? settings.chatTemplates : new Map([['default', chatTemplate]]);
    this.chatTemplateFile = chatTemplate === undefined ? 'tokenizer_config.json' : 'chat_template.jinja';
    if (settings.tokenizerClass !== undefined && REBUILDS_POST_PROCESSOR.test(settings.tokenizerClass)) {
      const addBos = settings.addBosToken ?? true;
      const addEos = settings.addEosToken ?? false;
      if ((addBos && this.bosTokenId === undefined) || (addEos && configEos === undefined)) {
        throw new LoRAError(
          'E_FORMAT',
          `${configFile}: add_${addBos ? 'bos' : 'eos'}_token is true but no ${addBos ? 'bos' : 'eos'}_token is set`,
        );
      }
      this.#wrap = { bos: addBos ? this.bosTokenId : undefined, eos: addEos ? configEos : undefined };
    }
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') throw new LoRAError('E_CONFIG', `encode expects a string, got ${describeValue(text)}`);
    const addSpecialTokens = options.addSpecialTokens ?? true;
    const wrap = this.#wrap;
    // A Llama-class tokenizer adds BOS/EOS from its config, in place of what tokenizer.json's
    // post-processor would add: never both, so BOS is never doubled.
    const { ids, tokens } = this.#hf.encode(text, { add_special_tokens: wrap ? false : addSpecialTokens });
    ids.forEach((id, i) => {
      if (typeof id !== 'number' || !Number.isInteger(id)) {
        throw new LoRAError(
          'E_FORMAT',
          `${this.description}: tokenizer.json maps token ${describeValue(tokens[i])} to no id (no unk_token to fall back to)`,
        );
      }
    });
    if (!wrap || !addSpecialTokens) return ids;
    return [...(wrap.bos === undefined ? [] : [wrap.bos]), ...ids, ...(wrap.eos === undefined ? [] : [wrap.eos])];
  }

  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    if (ids === null || typeof ids !== 'object' || typeof ids.length !== 'number') {
      throw new LoRAError('E_CONFIG', `decode expects an array of token ids, got ${describeValue(ids)}`);
    }
    const known: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
        throw new LoRAError('E_CONFIG', `decode: ids[${i}] must be a non-negative integer token id, got ${describeValue(id)}`);
      }
      // Ids without a token (a model's padded vocabulary) decode to nothing, as in the Rust
      // tokenizers `Tokenizer::decode` (`id_to_token` None is skipped); @huggingface/tokenizers
      // would print the unk token instead.
      if (this.#hf.id_to_token(id) !== undefined) known.push(id);
    }
    // @huggingface/tokenizers throws on an empty list.
    if (known.length === 0) return '';
    return this.#hf.decode(known, {
      skip_special_tokens: options.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: options.cleanUpTokenizationSpaces ?? this.#cleanUp,
    });
  }

  tokenToId(token: string): number | undefined {
    return typeof token === 'string' ? this.#hf.token_to_id(token) : undefined;
  }

  idToToken(id: number): string | undefined {
    return Number.isInteger(id) && id >= 0 ? this.#hf.id_to_token(id) : undefined;
  }
}
