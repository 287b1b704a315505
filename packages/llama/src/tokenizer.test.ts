import { isLoRAError } from '@lora/core';
import { describe, expect, it } from 'vitest';
import { textFileSource as memorySource } from './testing/memory-source.js';
import { makeTestTokenizer, testTokenizerFiles } from './testing/tokenizer-fixture.js';
import { loadTokenizer } from './tokenizer.js';

const TEXTS = [
  'Hello world! How are you today?',
  '  leading and trailing spaces  \n\n\ttabs and\r\nnewlines\n',
  'café naïve résumé — “quotes”',
  'こんにちは世界 你好，世界。日本語のテキスト',
  'emoji 🙂👋🏽🎉 and ones the vocab never saw: 🦙🧪 𝔘𝔫𝔦𝔠𝔬𝔡𝔢',
  "contractions: I'LL we've they'RE 1234567890",
];

function withFiles(style: 'smollm2' | 'llama3' | 'llama2', edit: (files: Record<string, string>) => void) {
  const files = testTokenizerFiles({ style });
  edit(files);
  return memorySource(files, `test:${style}`);
}

const json = (files: Record<string, string>, name: string) => JSON.parse(files[name] as string);

describe('byte-level BPE (SmolLM2 layout)', () => {
  const tok = makeTestTokenizer();

  it('round-trips ASCII and multi-byte UTF-8 text', () => {
    for (const text of TEXTS) {
      const ids = tok.encode(text);
      expect(ids.every((id) => Number.isInteger(id) && id >= 0 && id < tok.vocabSize)).toBe(true);
      expect(tok.decode(ids)).toBe(text);
    }
  });

  it('reads the special tokens and ids from tokenizer_config.json and generation_config.json', () => {
    const files = testTokenizerFiles();
    expect(tok.vocabSize).toBe(Object.keys(json(files, 'tokenizer.json').model.vocab).length);
    expect(tok.vocabSize).toBeGreaterThan(300);
    expect(tok.bosTokenId).toBe(1);
    expect([...tok.eosTokenIds]).toEqual([2]);
    expect(tok.padTokenId).toBe(2);
    expect(tok.specialTokens).toMatchObject({ bos_token: '<|im_start|>', eos_token: '<|im_end|>', unk_token: '<|endoftext|>' });
    expect(tok.tokenToId('<|im_end|>')).toBe(2);
    expect(tok.idToToken(1)).toBe('<|im_start|>');
  });

  it('adds no BOS: its post-processor is ByteLevel, as SmolLM2 in transformers', () => {
    expect(tok.encode('Hello')).toEqual(tok.encode('Hello', { addSpecialTokens: false }));
    expect(tok.encode('Hello')[0]).not.toBe(tok.bosTokenId);
  });

  it('encodes special tokens in text as one id each and skips them on request', () => {
    const ids = tok.encode('<|im_start|>user\nHi there<|im_end|>\n');
    expect(ids[0]).toBe(1);
    expect(ids.filter((id) => id === 2)).toHaveLength(1);
    expect(tok.decode(ids)).toBe('<|im_start|>user\nHi there<|im_end|>\n');
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe('user\nHi there\n');
  });

  it('decodes typed arrays, empty lists, and ids outside the vocabulary (to nothing, like tokenizers in Rust)', () => {
    const ids = tok.encode('Hello world');
    expect(tok.decode(Int32Array.from(ids))).toBe('Hello world');
    expect(tok.decode([])).toBe('');
    expect(tok.decode([...ids, tok.vocabSize + 10])).toBe('Hello world');
  });

  it('refuses ids that are not token ids and text that is not a string', () => {
    expect(() => tok.decode([1, -1])).toThrow(/ids\[1\] must be a non-negative integer token id, got -1/);
    expect(() => tok.decode([0.5])).toThrow(/E_CONFIG/);
    expect(() => tok.decode('abc' as never)).toThrow(/decode expects an array of token ids, got "abc"/);
    expect(() => tok.encode(42 as never)).toThrow(/encode expects a string, got 42/);
  });
});

describe('BOS the way transformers adds it', () => {
  it('Llama-3: the TemplateProcessing post-processor adds <|begin_of_text|> once', () => {
    const tok = makeTestTokenizer({ style: 'llama3' });
    const ids = tok.encode('Hello world');
    expect(tok.bosTokenId).toBe(0);
    expect(ids[0]).toBe(0);
    expect(ids.filter((id) => id === 0)).toHaveLength(1);
    expect(tok.encode('Hello world', { addSpecialTokens: false })).toEqual(ids.slice(1));
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe('Hello world');
    // generation_config.json lists <|end_of_text|> and <|eot_id|>; tokenizer_config.json names <|eot_id|>.
    expect([...tok.eosTokenIds].sort()).toEqual([1, 4]);
  });

  it('Llama-3 sets clean_up_tokenization_spaces, which decode applies unless told otherwise', () => {
    const tok = makeTestTokenizer({ style: 'llama3' });
    const ids = tok.encode('Hello , world .', { addSpecialTokens: false });
    expect(tok.decode(ids)).toBe('Hello, world.');
    expect(tok.decode(ids, { cleanUpTokenizationSpaces: false })).toBe('Hello , world .');
  });

  it('LlamaTokenizer: add_bos_token / add_eos_token replace the post-processor instead of adding to it', async () => {
    const tok = makeTestTokenizer({ style: 'llama2' });
    const ids = tok.encode('Hello world');
    expect(ids.filter((id) => id === 1)).toHaveLength(1);
    expect(ids[0]).toBe(1);
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe('Hello world');

    const noBos = await loadTokenizer(
      withFiles('llama2', (f) => {
        f['tokenizer_config.json'] = JSON.stringify({ ...json(f, 'tokenizer_config.json'), add_bos_token: false, add_eos_token: true });
      }),
    );
    const wrapped = noBos.encode('Hello world');
    expect(wrapped).toEqual([...ids.slice(1), 2]);
    expect(noBos.encode('Hello world', { addSpecialTokens: false })).toEqual(ids.slice(1));
  });

  it('SentencePiece-style byte fallback round-trips characters the vocab lacks', () => {
    const tok = makeTestTokenizer({ style: 'llama2' });
    expect(tok.specialTokens).toMatchObject({ bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>' });
    for (const text of TEXTS.map((t) => t.trim().replace(/\s+/g, ' '))) {
      expect(tok.decode(tok.encode(text), { skipSpecialTokens: true })).toBe(text);
    }
    expect(tok.encode('🦙', { addSpecialTokens: false }).map((id) => tok.idToToken(id))).toEqual(
      expect.arrayContaining(['<0xF0>', '<0x9F>', '<0xA6>', '<0x99>']),
    );
  });
});

describe('WordLevel (worked around: @huggingface/tokenizers 0.2.0 maps an unknown word to null)', () => {
  const wordLevel = (unk: string | null, config: Record<string, unknown> = {}) =>
    memorySource({
      'tokenizer.json': JSON.stringify({
        version: '1.0',
        added_tokens: [{ id: 0, content: '[UNK]', special: true }],
        normalizer: null,
        pre_tokenizer: { type: 'WhitespaceSplit' },
        post_processor: null,
        decoder: null,
        model: { type: 'WordLevel', vocab: { '[UNK]': 0, hello: 1, world: 2 }, unk_token: unk },
      }),
      'tokenizer_config.json': JSON.stringify(config),
    });

  it("maps an unknown word to the model's unk_token", async () => {
    const tok = await loadTokenizer(wordLevel('[UNK]'));
    expect(tok.encode('hello there world')).toEqual([1, 0, 2]);
  });

  it('says which token has no id when there is no unk_token at all', async () => {
    const tok = await loadTokenizer(wordLevel(null));
    expect(() => tok.encode('hello there')).toThrow(/tokenizer.json maps token "there" to no id/);
  });
});

describe('loadTokenizer errors name the file and what is wrong', () => {
  const expectError = async (promise: Promise<unknown>, code: string, message: RegExp) => {
    const err = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isLoRAError(err), String(err)).toBe(true);
    expect((err as { code: string }).code).toBe(code);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message.length).toBeLessThan(600);
  };

  it('missing tokenizer.json → E_NOT_FOUND', async () => {
    await expectError(
      loadTokenizer(withFiles('smollm2', (f) => delete f['tokenizer.json'])),
      'E_NOT_FOUND',
      /test:smollm2: tokenizer.json not found/,
    );
  });

  it('broken files → E_FORMAT naming the file', async () => {
    await expectError(
      loadTokenizer(withFiles('smollm2', (f) => (f['tokenizer.json'] = '{"model": '))),
      'E_FORMAT',
      /test:smollm2: tokenizer.json is not valid JSON/,
    );
    await expectError(
      loadTokenizer(withFiles('smollm2', (f) => (f['tokenizer.json'] = '[1, 2]'))),
      'E_FORMAT',
      /tokenizer.json must hold a JSON object, got \[1, 2\]/,
    );
    await expectError(
      loadTokenizer(withFiles('smollm2', (f) => (f['tokenizer.json'] = JSON.stringify({ model: { type: 'BPE', vocab: {} } })))),
      'E_FORMAT',
      /test:smollm2: tokenizer.json: a BPE model needs "vocab" \(an object\) and "merges" \(a list\)/,
    );
    await expectError(
      loadTokenizer(
        withFiles('smollm2', (f) => (f['tokenizer.json'] = JSON.stringify({ ...json(f, 'tokenizer.json'), normalizer: { type: 'Nope' } }))),
      ),
      'E_FORMAT',
      /test:smollm2: tokenizer.json cannot be loaded: .*Nope/,
    );
    await expectError(
      loadTokenizer(withFiles('smollm2', (f) => (f['tokenizer.json'] = JSON.stringify({ model: { type: 'Quantum', vocab: { a: 0 } } })))),
      'E_UNSUPPORTED',
      /tokenizer.json: model type "Quantum" is not supported; expected one of BPE, WordPiece, Unigram, WordLevel/,
    );
    await expectError(
      loadTokenizer(withFiles('smollm2', (f) => (f['tokenizer_config.json'] = JSON.stringify({ eos_token: 5 })))),
      'E_FORMAT',
      /tokenizer_config.json: "eos_token" must be a token string or an AddedToken object .* got 5/,
    );
    await expectError(
      loadTokenizer(withFiles('smollm2', (f) => (f['tokenizer_config.json'] = JSON.stringify({ eos_token: '<|nope|>' })))),
      'E_FORMAT',
      /tokenizer_config.json: eos_token "<\|nope\|>" is not in tokenizer.json's vocabulary/,
    );
    await expectError(
      loadTokenizer(withFiles('smollm2', (f) => (f['generation_config.json'] = JSON.stringify({ eos_token_id: [2, 'x'] })))),
      'E_FORMAT',
      /generation_config.json: "eos_token_id"\[1\] must be a token id .* got "x"/,
    );
    await expectError(
      loadTokenizer(withFiles('smollm2', (f) => (f['generation_config.json'] = JSON.stringify({ eos_token_id: 1_000_000 })))),
      'E_FORMAT',
      /eos_token_id 1000000 is outside the vocabulary/,
    );
    const notUtf8 = memorySource({ ...testTokenizerFiles(), 'tokenizer.json': new Uint8Array([0x7b, 0xff, 0x7d]) }, 'bin');
    await expectError(loadTokenizer(notUtf8), 'E_FORMAT', /bin: tokenizer.json is not UTF-8 text/);
  });

  it('bounds tokenizer.json by maxBytes and refuses a source that is not one', async () => {
    await expectError(
      loadTokenizer(
        withFiles('smollm2', () => {}),
        { maxBytes: 1000 },
      ),
      'E_FORMAT',
      /tokenizer.json is \d+ bytes; at most maxBytes = 1000/,
    );
    await expectError(loadTokenizer({} as never), 'E_CONFIG', /loadTokenizer expects a FileSource, got object/);
  });

  it('reads a list of EOS ids, and chat_template.jinja over tokenizer_config.json', async () => {
    const tok = await loadTokenizer(
      withFiles('smollm2', (f) => {
        f['generation_config.json'] = JSON.stringify({ eos_token_id: [0, 2] });
        f['chat_template.jinja'] = '{{ messages[0].content }}';
      }),
    );
    expect([...tok.eosTokenIds].sort()).toEqual([0, 2]);
    expect(tok.chatTemplates.get('default')).toBe('{{ messages[0].content }}');
    expect(tok.chatTemplateFile).toBe('chat_template.jinja');
  });
});
