import { describeValue, LoRAError } from '@lora/core';

/**
 * What transformers reads from `tokenizer_config.json` besides the vocabulary, and the EOS ids of
 * `generation_config.json`. Values come from a stranger's repository: every field is checked and
 * a bad one is reported with the file and key.
 */
export interface TokenizerSettings {
  /** bos_token, eos_token, unk_token, pad_token, sep_token, cls_token, mask_token where set. */
  readonly specialTokens: Readonly<Record<string, string>>;
  readonly additionalSpecialTokens: readonly string[];
  readonly addBosToken: boolean | undefined;
  readonly addEosToken: boolean | undefined;
  readonly cleanUpTokenizationSpaces: boolean;
  readonly tokenizerClass: string | undefined;
  /** Named chat templates; a single template string is named `default` (as transformers does). */
  readonly chatTemplates: ReadonlyMap<string, string>;
}

export interface GenerationSettings {
  readonly bosTokenId: number | undefined;
  readonly eosTokenIds: readonly number[];
}

const SPECIAL_KEYS = ['bos_token', 'eos_token', 'unk_token', 'pad_token', 'sep_token', 'cls_token', 'mask_token'] as const;
const MAX_TOKEN_CHARS = 1024;
const MAX_TOKEN_ID = 2 ** 24;

/**
 * A special token as transformers saves it: a string, or an AddedToken dict `{"__type":
 * "AddedToken", "content": ...}` (transformers `tokenization_utils_base.py` `_set_model_specific_special_tokens` /
 * `AddedToken.__getstate__`), or null for "none".
 */
function tokenContent(value: unknown, what: string): string | undefined {
  if (value === null || value === undefined) return undefined;
  const content = typeof value === 'object' && !Array.isArray(value) ? (value as { content?: unknown }).content : value;
  if (typeof content !== 'string' || content.length === 0 || content.length > MAX_TOKEN_CHARS) {
    throw new LoRAError(
      'E_FORMAT',
      `${what} must be a token string or an AddedToken object with a "content" string (1 to ${MAX_TOKEN_CHARS} characters), got ${describeValue(value)}`,
    );
  }
  return content;
}

function optionalBoolean(config: Record<string, unknown>, key: string, file: string): boolean | undefined {
  const value = config[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw new LoRAError('E_FORMAT', `${file}: "${key}" must be true or false, got ${describeValue(value)}`);
  return value;
}

/**
 * `chat_template` is a string, or (transformers ≥ 4.34 with several templates) a list of
 * `{"name", "template"}` (transformers `tokenization_utils_base.py` `save_pretrained`). A dict
 * `{name: template}` is accepted too: that is how transformers holds them in memory.
 */
function parseChatTemplates(value: unknown, file: string): Map<string, string> {
  const templates = new Map<string, string>();
  if (value === undefined || value === null) return templates;
  if (typeof value === 'string') {
    templates.set('default', value);
    return templates;
  }
  const entries = Array.isArray(value)
    ? value.map((item, i) => {
        const { name, template } = (item ?? {}) as { name?: unknown; template?: unknown };
        if (typeof name !== 'string' || typeof template !== 'string') {
          throw new LoRAError(
            'E_FORMAT',
            `${file}: chat_template[${i}] must be {"name": string, "template": string}, got ${describeValue(item)}`,
          );
        }
        return [name, template] as const;
      })
    : typeof value === 'object'
      ? Object.entries(value as Record<string, unknown>).map(([name, template]) => {
          if (typeof template !== 'string') {
            throw new LoRAError(
              'E_FORMAT',
              `${file}: chat_template["${name.slice(0, 60)}"] must be a string, got ${describeValue(template)}`,
            );
          }
          return [name, template] as const;
        })
      : undefined;
  if (!entries) {
    throw new LoRAError(
      'E_FORMAT',
      `${file}: chat_template must be a string or a list of {"name", "template"}, got ${describeValue(value)}`,
    );
  }
  for (const [name, template] of entries) templates.set(name, template);
  return templates;
}

/** Reads `tokenizer_config.json` (an empty object when the file is absent). */
export function parseTokenizerConfig(config: Record<string, unknown>, file: string): TokenizerSettings {
  const specialTokens: Record<string, string> = {};
  for (const key of SPECIAL_KEYS) {
    const content = tokenContent(config[key], `${file}: "${key}"`);
    if (content !== undefined) specialTokens[key] = content;
  }
  const extra = config.additional_special_tokens ?? [];
  if (!Array.isArray(extra)) {
    throw new LoRAError('E_FORMAT', `${file}: "additional_special_tokens" must be a list, got ${describeValue(extra)}`);
  }
  const additionalSpecialTokens = extra.map((token, i) => tokenContent(token, `${file}: "additional_special_tokens"[${i}]`) as string);
  const tokenizerClass = config.tokenizer_class;
  if (tokenizerClass !== undefined && tokenizerClass !== null && typeof tokenizerClass !== 'string') {
    throw new LoRAError('E_FORMAT', `${file}: "tokenizer_class" must be a string, got ${describeValue(tokenizerClass)}`);
  }
  return {
    specialTokens,
    additionalSpecialTokens,
    addBosToken: optionalBoolean(config, 'add_bos_token', file),
    addEosToken: optionalBoolean(config, 'add_eos_token', file),
    // transformers ≥ 4.45 defaults this to False (`tokenization_utils_base.py` `PreTrainedTokenizerBase.__init__`);
    // @huggingface/tokenizers defaults it to true, so it is always passed explicitly.
    cleanUpTokenizationSpaces: optionalBoolean(config, 'clean_up_tokenization_spaces', file) ?? false,
    tokenizerClass: tokenizerClass ?? undefined,
    chatTemplates: parseChatTemplates(config.chat_template, file),
  };
}

function tokenId(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value >= MAX_TOKEN_ID) {
    throw new LoRAError('E_FORMAT', `${what} must be a token id (an integer in [0, ${MAX_TOKEN_ID})), got ${describeValue(value)}`);
  }
  return value;
}

/** Reads `generation_config.json`: `eos_token_id` is an id or a list of ids (Llama-3 lists two). */
export function parseGenerationConfig(config: Record<string, unknown>, file: string): GenerationSettings {
  const eos = config.eos_token_id;
  const eosList = eos === undefined || eos === null ? [] : Array.isArray(eos) ? eos : [eos];
  if (eosList.length > 1024) throw new LoRAError('E_FORMAT', `${file}: "eos_token_id" lists ${eosList.length} ids; expected a few`);
  const bos = config.bos_token_id;
  return {
    bosTokenId: bos === undefined || bos === null ? undefined : tokenId(bos, `${file}: "bos_token_id"`),
    eosTokenIds: eosList.map((id, i) => tokenId(id, `${file}: "eos_token_id"${Array.isArray(eos) ? `[${i}]` : ''}`)),
  };
}
