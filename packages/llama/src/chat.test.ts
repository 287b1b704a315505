import { describe, expect, it } from 'vitest';
import { applyChatTemplate, type ChatMessage, encodeChat } from './chat.js';
import { compileTemplate, renderTemplate, strftime } from './chat-runtime.js';
import { textFileSource as memorySource } from './testing/memory-source.js';
import { makeTestTokenizer, testTokenizerFiles } from './testing/tokenizer-fixture.js';
import { loadTokenizer, type Tokenizer } from './tokenizer.js';

const SYSTEM = '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n';
const conversation: ChatMessage[] = [
  { role: 'user', content: 'What is the capital of France?' },
  { role: 'assistant', content: 'Paris.' },
];

async function withTemplate(template: unknown): Promise<Tokenizer> {
  const files = testTokenizerFiles();
  const config = { ...JSON.parse(files['tokenizer_config.json'] as string), chat_template: template };
  return loadTokenizer(memorySource({ ...files, 'tokenizer_config.json': JSON.stringify(config) }, 'hub:test/model@main'));
}

describe('applyChatTemplate (SmolLM2 ChatML)', () => {
  const tok = makeTestTokenizer();

  it('renders a 2-turn conversation, with and without a generation prompt', () => {
    const turns = '<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\nParis.<|im_end|>\n';
    expect(applyChatTemplate(tok, conversation)).toBe(SYSTEM + turns);
    expect(applyChatTemplate(tok, conversation, { addGenerationPrompt: true })).toBe(`${SYSTEM + turns}<|im_start|>assistant\n`);
    const withSystem = [{ role: 'system', content: 'Be brief.' }, ...conversation];
    expect(applyChatTemplate(tok, withSystem)).toBe(`<|im_start|>system\nBe brief.<|im_end|>\n${turns}`);
  });

  it('encodes the rendered text with each marker as one special token', () => {
    const ids = encodeChat(tok, conversation, { addGenerationPrompt: true });
    expect(ids.filter((id) => id === tok.tokenToId('<|im_start|>'))).toHaveLength(4);
    expect(ids.filter((id) => id === tok.tokenToId('<|im_end|>'))).toHaveLength(3);
    expect(tok.decode(ids)).toBe(applyChatTemplate(tok, conversation, { addGenerationPrompt: true }));
  });

  it('continues the final message for prefill', () => {
    const text = applyChatTemplate(tok, [conversation[0] as ChatMessage, { role: 'assistant', content: 'The capital is' }], {
      continueFinalMessage: true,
    });
    expect(text.endsWith('<|im_start|>assistant\nThe capital is')).toBe(true);
    expect(() => applyChatTemplate(tok, conversation, { continueFinalMessage: true, addGenerationPrompt: true })).toThrow(/E_CONFIG/);
  });

  it('refuses messages that are not {role, content}', () => {
    expect(() => applyChatTemplate(tok, 'hi' as never)).toThrow(/messages must be an array of \{role, content\}, got "hi"/);
    expect(() => applyChatTemplate(tok, [{ content: 'x' } as never])).toThrow(/messages\[0\] must be an object with a string "role"/);
  });
});

describe('BOS written by the template is not doubled (Llama-3)', () => {
  it('encodeChat encodes without special tokens, as transformers apply_chat_template(tokenize=True)', () => {
    const tok = makeTestTokenizer({ style: 'llama3' });
    const text = applyChatTemplate(tok, conversation, { addGenerationPrompt: true });
    expect(text.startsWith('<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat is the capital of France?<|eot_id|>')).toBe(
      true,
    );
    expect(text.endsWith('<|start_header_id|>assistant<|end_header_id|>\n\n')).toBe(true);
    const ids = encodeChat(tok, conversation, { addGenerationPrompt: true });
    expect(ids.filter((id) => id === tok.bosTokenId)).toHaveLength(1);
    // What encoding the text with special tokens would do: the post-processor's BOS on top.
    expect(tok.encode(text).filter((id) => id === tok.bosTokenId)).toHaveLength(2);
  });
});

describe('template selection and the variables transformers passes', () => {
  it('passes tools/documents as none when not given, and the special tokens as strings', async () => {
    const tok = await withTemplate(
      '{{ bos_token }}|{{ eos_token }}|{{ pad_token }}|{{ additional_special_tokens | length }}|{{ tools is none }}|{{ documents is none }}|{{ add_generation_prompt }}|{{ custom }}',
    );
    expect(applyChatTemplate(tok, [], { variables: { custom: 'x' } })).toBe('<|im_start|>|<|im_end|>|<|im_end|>|2|true|true|false|x');
    expect(applyChatTemplate(tok, [], { tools: [{ type: 'function' }], addGenerationPrompt: true })).toContain('|false|true|true|');
  });

  it('picks tool_use when tools are given, default otherwise, and a named or given template on request', async () => {
    const tok = await withTemplate([
      { name: 'default', template: 'plain' },
      { name: 'tool_use', template: 'tools: {{ tools | length if tools is not none else tools }}' },
    ]);
    expect(applyChatTemplate(tok, conversation)).toBe('plain');
    expect(applyChatTemplate(tok, conversation, { tools: [{}, {}] })).toBe('tools: 2');
    expect(applyChatTemplate(tok, conversation, { chatTemplate: 'tool_use' })).toBe('tools: '); // jinja2 would print None; @huggingface/jinja prints nothing
    expect(applyChatTemplate(tok, conversation, { chatTemplate: '{{ messages | length }} messages' })).toBe('2 messages');
    const noDefault = await withTemplate([{ name: 'rag', template: 'x' }]);
    expect(() => applyChatTemplate(noDefault, conversation)).toThrow(/has chat templates \["rag"\] and none named "default"/);
  });

  it('no template → E_NOT_FOUND saying where it looked', () => {
    const tok = makeTestTokenizer({ style: 'llama2' });
    expect(() => applyChatTemplate(tok, conversation)).toThrow(
      /\[E_NOT_FOUND\] test tokenizer \(llama2\) has no chat template \(tokenizer_config.json has no "chat_template" and there is no chat_template.jinja\)/,
    );
  });
});

describe('template errors are E_FORMAT naming tokenizer_config.json', () => {
  it('a template that does not parse', async () => {
    const tok = await withTemplate('{% for m in messages %}{{ m.content }');
    expect(() => applyChatTemplate(tok, conversation)).toThrow(
      /\[E_FORMAT\] hub:test\/model@main: tokenizer_config.json: chat template does not parse: /,
    );
  });

  it('raise_exception in the template', async () => {
    const tok = await withTemplate(
      "{% for m in messages %}{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% endfor %}ok",
    );
    expect(applyChatTemplate(tok, conversation)).toBe('ok');
    expect(() => applyChatTemplate(tok, [...conversation, { role: 'assistant', content: 'again' }])).toThrow(
      /tokenizer_config.json: chat template refused the messages: Conversation roles must alternate/,
    );
  });

  it('a runaway template is stopped, quickly and without a huge allocation', async () => {
    const started = performance.now();
    for (const [template, reason] of [
      ['{% for i in range(1000000000) %}x{% endfor %}', /range\(\) of 1000000000 items is too long/],
      [
        "{% set ns = namespace(s='xxxxxxxx') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s | length }}",
        /built a string/,
      ],
    ] as const) {
      const tok = await withTemplate(template);
      expect(() => applyChatTemplate(tok, conversation)).toThrow(/tokenizer_config.json: chat template was stopped: /);
      expect(() => applyChatTemplate(tok, conversation)).toThrow(reason);
    }
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('counts loop iterations, even of an empty body, and bounds the time', () => {
    const nested = compileTemplate('{% for i in range(100000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}');
    const limits = { maxSteps: 20_000, maxMillis: 60_000, maxStringChars: 1000 };
    expect(() => renderTemplate(nested, {}, limits)).toThrow(/more than 20000 evaluation steps/);
    expect(() => renderTemplate(nested, {}, { ...limits, maxSteps: 1e12, maxMillis: 50 })).toThrow(/ran for more than 50 ms/);
    expect(renderTemplate(compileTemplate('{% for i in range(3) %}{% endfor %}ok'), {}, limits)).toBe('ok');
  });

  it('strftime_now formats like Python in the C locale (Llama-3.2 prints "%d %b %Y")', async () => {
    const tok = await withTemplate('{{ strftime_now("%d %b %Y") }}');
    expect(applyChatTemplate(tok, conversation)).toMatch(/^\d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4}$/);
    expect(strftime(new Date(2024, 8, 5, 14, 7, 9), '%a %A %b %B %d %H %I %j %m %M %p %S %y %Y %%')).toBe(
      'Thu Thursday Sep September 05 14 02 249 09 07 PM 09 24 2024 %',
    );
  });
});
