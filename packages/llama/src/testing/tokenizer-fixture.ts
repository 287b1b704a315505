import { createTokenizer, type Tokenizer } from '../tokenizer.js';
import { bytesToUnicode, trainBpe } from './bpe.js';

/**
 * Generated tokenizer files in the exact Hugging Face formats (`tokenizer.json` as written by the
 * Rust `tokenizers` crate, `tokenizer_config.json` / `generation_config.json` as written by
 * transformers), small enough to build in a test (a few hundred tokens) and shaped like the real
 * files of the model families they imitate:
 *
 * - `smollm2`: SmolLM2-Instruct. ByteLevel BPE (Digits + ByteLevel pre-tokenizer, ByteLevel
 *   post-processor that adds nothing), `<|endoftext|>` `<|im_start|>` `<|im_end|>`, SmolLM2's ChatML
 *   chat template.
 * - `llama3`: Llama-3-Instruct. ByteLevel BPE whose post-processor (TemplateProcessing) adds
 *   `<|begin_of_text|>`, a chat template that starts with `{{ bos_token }}`, and a
 *   generation_config.json with a list of EOS ids (`<|end_of_text|>`, `<|eot_id|>`).
 * - `llama2`: Llama-2 / Mistral. SentencePiece-style BPE (`▁` for spaces, byte fallback tokens
 *   `<0x00>`..`<0xFF>`, a Strip decoder that drops the first space), `tokenizer_class`
 *   LlamaTokenizer with `add_bos_token`, and no chat template.
 */
export type TestTokenizerStyle = 'smollm2' | 'llama3' | 'llama2';

/** What {@link testTokenizerFiles} and {@link makeTestTokenizer} generate. */
export interface TestTokenizerOptions {
  /** The model family whose files to imitate (default `smollm2`). */
  readonly style?: TestTokenizerStyle;
  /** Merges to learn (default 160): the vocab is the specials + 256 base symbols + these. */
  readonly merges?: number;
}

const CORPUS = [
  'Hello world! Hello there, how are you today?',
  'The quick brown fox jumps over the lazy dog. The dog sleeps.',
  'You are a helpful AI assistant named SmolLM, trained by Hugging Face',
  'system user assistant tool system user assistant',
  'What is the capital of France? The capital of France is Paris.',
  'Multi-LoRA serving runs many adapters in one batch, one adapter per request.',
  'The answer is 42. Stop here. END END',
  'café naïve résumé façade',
  'こんにちは世界 こんにちは',
  '你好，世界。你好！',
  '日本語のテキストです',
  '🙂 👋 🎉 🙂',
];

const SMOLLM2_CHAT_TEMPLATE =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

const LLAMA3_CHAT_TEMPLATE =
  "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

const SPECIALS: Record<TestTokenizerStyle, string[]> = {
  smollm2: ['<|endoftext|>', '<|im_start|>', '<|im_end|>'],
  llama3: ['<|begin_of_text|>', '<|end_of_text|>', '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'],
  llama2: ['<unk>', '<s>', '</s>'],
};

// The GPT-2 pre-tokenization regex (tokenizers `pre_tokenizers/byte_level.rs`), used to split the
// training corpus the way the ByteLevel pre-tokenizer splits text at encode time.
const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

// Llama-3's split pattern (its tokenizer.json `pre_tokenizer`), in Oniguruma syntax: `(?i:...)`
// must be translated for JavaScript, which is part of what the llama3 fixture tests.
const LLAMA3_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const addedToken = (id: number, content: string) => ({
  id,
  content,
  single_word: false,
  lstrip: false,
  rstrip: false,
  normalized: false,
  special: true,
});

function byteLevelModel(specials: string[], merges: number) {
  const byteChars = bytesToUnicode();
  const encoder = new TextEncoder();
  const words = new Map<string, { symbols: string[]; count: number }>();
  for (const line of CORPUS) {
    for (const piece of line.match(GPT2_SPLIT) ?? []) {
      const word = Array.from(encoder.encode(piece), (b) => byteChars[b] as string).join('');
      const entry = words.get(word) ?? { symbols: Array.from(word), count: 0 };
      entry.count++;
      words.set(word, entry);
    }
  }
  const trained = trainBpe(words, merges);
  const vocab: Record<string, number> = {};
  for (const token of [...specials, ...byteChars, ...trained.tokens]) vocab[token] ??= Object.keys(vocab).length;
  return { vocab, merges: trained.merges };
}

function sentencePieceModel(specials: string[], merges: number) {
  const words = new Map<string, { symbols: string[]; count: number }>();
  const chars = new Set<string>();
  for (const line of CORPUS) {
    for (const piece of line.split(' ')) {
      const word = `▁${piece}`;
      for (const c of word) chars.add(c);
      const entry = words.get(word) ?? { symbols: Array.from(word), count: 0 };
      entry.count++;
      words.set(word, entry);
    }
  }
  const trained = trainBpe(words, merges);
  const bytes = Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  const vocab: Record<string, number> = {};
  for (const token of [...specials, ...bytes, ...[...chars].sort(), ...trained.tokens]) vocab[token] ??= Object.keys(vocab).length;
  return { vocab, merges: trained.merges };
}

const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };

function bosTemplate(bos: string, id: number) {
  return {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [
      { SpecialToken: { id: bos, type_id: 0 } },
      { Sequence: { id: 'A', type_id: 0 } },
      { SpecialToken: { id: bos, type_id: 1 } },
      { Sequence: { id: 'B', type_id: 1 } },
    ],
    special_tokens: { [bos]: { id: bos, ids: [id], tokens: [bos] } },
  };
}

/** `tokenizer.json`, `tokenizer_config.json` and `generation_config.json` of a small test tokenizer. */
export function testTokenizerFiles(options: TestTokenizerOptions = {}): Record<string, string> {
  const style = options.style ?? 'smollm2';
  const specials = SPECIALS[style];
  const merges = options.merges ?? 160;
  const added = specials.map((content, id) => addedToken(id, content));
  const model = style === 'llama2' ? sentencePieceModel(specials, merges) : byteLevelModel(specials, merges);
  const bpe = {
    type: 'BPE',
    dropout: null,
    unk_token: style === 'llama2' ? '<unk>' : null,
    continuing_subword_prefix: null,
    end_of_word_suffix: null,
    fuse_unk: style === 'llama2',
    byte_fallback: style === 'llama2',
    ignore_merges: style === 'llama3',
    ...model,
  };
  let tokenizer: Record<string, unknown>;
  let config: Record<string, unknown>;
  let generation: Record<string, unknown>;
  const addedTokensDecoder = Object.fromEntries(added.map(({ id, ...token }) => [String(id), token]));
  if (style === 'smollm2') {
    tokenizer = {
      normalizer: null,
      pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: true }, byteLevel] },
      post_processor: { ...byteLevel, add_prefix_space: true, trim_offsets: false },
      decoder: { ...byteLevel, add_prefix_space: true },
    };
    config = {
      add_prefix_space: false,
      added_tokens_decoder: addedTokensDecoder,
      additional_special_tokens: ['<|im_start|>', '<|im_end|>'],
      bos_token: '<|im_start|>',
      chat_template: SMOLLM2_CHAT_TEMPLATE,
      clean_up_tokenization_spaces: false,
      eos_token: '<|im_end|>',
      model_max_length: 8192,
      pad_token: '<|im_end|>',
      tokenizer_class: 'GPT2Tokenizer',
      unk_token: '<|endoftext|>',
      vocab_size: Object.keys(model.vocab).length,
    };
    generation = { _from_model_config: true, bos_token_id: 1, eos_token_id: 2, pad_token_id: 2, transformers_version: '4.42.3' };
  } else if (style === 'llama3') {
    tokenizer = {
      normalizer: null,
      pre_tokenizer: {
        type: 'Sequence',
        pretokenizers: [
          { type: 'Split', pattern: { Regex: LLAMA3_SPLIT }, behavior: 'Isolated', invert: false },
          { ...byteLevel, use_regex: false },
        ],
      },
      post_processor: { type: 'Sequence', processors: [{ ...byteLevel, trim_offsets: false }, bosTemplate('<|begin_of_text|>', 0)] },
      decoder: byteLevel,
    };
    config = {
      added_tokens_decoder: addedTokensDecoder,
      bos_token: '<|begin_of_text|>',
      chat_template: LLAMA3_CHAT_TEMPLATE,
      clean_up_tokenization_spaces: true,
      eos_token: '<|eot_id|>',
      model_input_names: ['input_ids', 'attention_mask'],
      model_max_length: 1e30,
      tokenizer_class: 'PreTrainedTokenizerFast',
    };
    generation = {
      bos_token_id: 0,
      do_sample: true,
      eos_token_id: [1, 4],
      temperature: 0.6,
      top_p: 0.9,
      transformers_version: '4.40.0.dev0',
    };
  } else {
    tokenizer = {
      normalizer: {
        type: 'Sequence',
        normalizers: [
          { type: 'Prepend', prepend: '▁' },
          { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
        ],
      },
      pre_tokenizer: null,
      post_processor: bosTemplate('<s>', 1),
      decoder: {
        type: 'Sequence',
        decoders: [
          { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
          { type: 'ByteFallback' },
          { type: 'Fuse' },
          { type: 'Strip', content: ' ', start: 1, stop: 0 },
        ],
      },
    };
    // The Llama-2 config names its special tokens as AddedToken objects, not strings.
    const token = (content: string) => ({
      __type: 'AddedToken',
      content,
      lstrip: false,
      normalized: false,
      rstrip: false,
      single_word: false,
    });
    config = {
      add_bos_token: true,
      add_eos_token: false,
      added_tokens_decoder: addedTokensDecoder,
      bos_token: token('<s>'),
      clean_up_tokenization_spaces: false,
      eos_token: token('</s>'),
      legacy: false,
      model_max_length: 1e30,
      pad_token: null,
      sp_model_kwargs: {},
      tokenizer_class: 'LlamaTokenizer',
      unk_token: token('<unk>'),
    };
    generation = { bos_token_id: 1, eos_token_id: 2, pad_token_id: 0, transformers_version: '4.31.0.dev0' };
  }
  const json = { version: '1.0', truncation: null, padding: null, added_tokens: added, ...tokenizer, model: bpe };
  return {
    'tokenizer.json': JSON.stringify(json, null, 2),
    'tokenizer_config.json': JSON.stringify(config, null, 2),
    'generation_config.json': JSON.stringify(generation, null, 2),
  };
}

/** A loaded test tokenizer (see {@link testTokenizerFiles}). */
export function makeTestTokenizer(options: TestTokenizerOptions = {}): Tokenizer {
  const files = testTokenizerFiles(options);
  return createTokenizer(
    {
      tokenizerJson: files['tokenizer.json'] as string,
      tokenizerConfig: JSON.parse(files['tokenizer_config.json'] as string),
      generationConfig: JSON.parse(files['generation_config.json'] as string),
    },
    `test tokenizer (${options.style ?? 'smollm2'})`,
  );
}
