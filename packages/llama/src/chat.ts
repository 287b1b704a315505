import type { Template } from '@huggingface/jinja';
import { describeValue, LoRAError } from '@lora/core';
import { compileTemplate, renderTemplate, TemplateLimit, TemplateRaised } from './chat-runtime.js';
import type { Tokenizer } from './tokenizer.js';

/** One message of a conversation, as chat templates read it (`role`, `content`, and whatever else the template uses). */
export interface ChatMessage {
  /** Who speaks, e.g. `system`, `user`, `assistant` or `tool`; templates branch on it. */
  readonly role: string;
  /**
   * The text, or a list of content parts (multimodal style, e.g. `{ type: "text", text }`) for
   * templates that read them. With `continueFinalMessage` the last message's content (or its last
   * part's `text`) must be a string.
   */
  readonly content?: string | readonly unknown[] | null;
  readonly [key: string]: unknown;
}

/** Options of {@link applyChatTemplate} and {@link encodeChat}, after transformers' `apply_chat_template` arguments. */
export interface ChatTemplateOptions {
  /** End with the header of an assistant turn, for the model to write it. Default false. */
  readonly addGenerationPrompt?: boolean;
  /** End the text inside the last message, for the model to continue it (prefill). Default false. */
  readonly continueFinalMessage?: boolean;
  /** Tool definitions (JSON schemas) for templates that support tools; picks the `tool_use` template where there is one. */
  readonly tools?: readonly unknown[];
  /** Documents for retrieval-augmented templates. */
  readonly documents?: readonly unknown[];
  /** A template name from the model's named templates, or the text of a template to use instead. */
  readonly chatTemplate?: string;
  /** More template variables (transformers' `**kwargs`), e.g. `{ enable_thinking: false }`. */
  readonly variables?: Readonly<Record<string, unknown>>;
}

const compiled = new WeakMap<Tokenizer, Map<string, Template>>();

/**
 * Which template to use, as transformers `tokenization_utils_base.py` `get_chat_template`: a name
 * among the model's templates, else the text given; with several templates and no name, `tool_use`
 * when tools are passed, else `default`.
 */
function selectTemplate(tokenizer: Tokenizer, options: ChatTemplateOptions): { name: string; text: string; own: boolean } {
  const templates = tokenizer.chatTemplates;
  const requested = options.chatTemplate;
  if (requested !== undefined) {
    if (typeof requested !== 'string' || requested.length === 0) {
      throw new LoRAError('E_CONFIG', `chatTemplate must be a template name or text, got ${describeValue(requested)}`);
    }
    const named = templates.get(requested);
    return named === undefined ? { name: 'given', text: requested, own: false } : { name: requested, text: named, own: true };
  }
  const name = options.tools !== undefined && templates.has('tool_use') ? 'tool_use' : 'default';
  const text = templates.get(name);
  if (text === undefined) {
    throw new LoRAError(
      'E_NOT_FOUND',
      templates.size === 0
        ? `${tokenizer.description} has no chat template (tokenizer_config.json has no "chat_template" and there is no chat_template.jinja); pass options.chatTemplate with the template text`
        : `${tokenizer.description}: ${tokenizer.chatTemplateFile} has chat templates ${describeValue([...templates.keys()])} and none named "default"; pass options.chatTemplate with one of these names`,
    );
  }
  return { name, text, own: true };
}

function checkMessages(messages: readonly ChatMessage[]): void {
  if (!Array.isArray(messages))
    throw new LoRAError('E_CONFIG', `messages must be an array of {role, content}, got ${describeValue(messages)}`);
  messages.forEach((message, i) => {
    if (message === null || typeof message !== 'object' || typeof message.role !== 'string') {
      throw new LoRAError('E_CONFIG', `messages[${i}] must be an object with a string "role", got ${describeValue(message)}`);
    }
  });
}

/** transformers `apply_chat_template` with `continue_final_message`: the text ends where the last message's content ends. */
function cutAfterFinalMessage(text: string, messages: readonly ChatMessage[], where: string): string {
  const last = messages.at(-1)?.content;
  const final = typeof last === 'string' ? last : Array.isArray(last) ? (last.at(-1) as { text?: unknown } | undefined)?.text : undefined;
  if (typeof final !== 'string') throw new LoRAError('E_CONFIG', 'continueFinalMessage needs a last message whose content is text');
  for (const content of [final, final.trim()]) {
    const at = text.lastIndexOf(content);
    if (at >= 0) return text.slice(0, at + content.length);
  }
  throw new LoRAError(
    'E_FORMAT',
    `${where} does not reproduce the final message's content, so continueFinalMessage cannot cut the text after it`,
  );
}

/**
 * Renders a conversation with the model's chat template, with the variables transformers passes
 * (`tokenization_utils_base.py` `apply_chat_template` → `utils/chat_template_utils.py`
 * `render_jinja_template`): `messages`, `tools` and `documents` (none when not given, which
 * templates test with `is not none`), `add_generation_prompt`, the special tokens (`bos_token`,
 * `eos_token`, ... as strings) and `additional_special_tokens`, plus `options.variables`.
 * A template that does not parse, fails, or calls `raise_exception` → E_FORMAT naming its file.
 */
export function applyChatTemplate(tokenizer: Tokenizer, messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
  checkMessages(messages);
  const addGenerationPrompt = options.addGenerationPrompt ?? false;
  if (addGenerationPrompt && options.continueFinalMessage) {
    throw new LoRAError(
      'E_CONFIG',
      'addGenerationPrompt and continueFinalMessage cannot both be set: one opens a new turn, the other continues the last',
    );
  }
  const { name, text, own } = selectTemplate(tokenizer, options);
  const where = own
    ? `${tokenizer.description}: ${tokenizer.chatTemplateFile}: chat template${name === 'default' ? '' : ` "${name}"`}`
    : 'the chat template given in options.chatTemplate';
  let cache = compiled.get(tokenizer);
  let template = own ? cache?.get(text) : undefined;
  if (!template) {
    try {
      template = compileTemplate(text);
    } catch (err) {
      throw new LoRAError('E_FORMAT', `${where} does not parse: ${String((err as Error)?.message ?? err).slice(0, 300)}`, { cause: err });
    }
    if (own) {
      if (!cache) compiled.set(tokenizer, (cache = new Map()));
      cache.set(text, template);
    }
  }
  const variables = {
    ...tokenizer.specialTokens,
    additional_special_tokens: tokenizer.additionalSpecialTokens,
    ...options.variables,
    messages,
    tools: options.tools ?? null,
    documents: options.documents ?? null,
    add_generation_prompt: addGenerationPrompt,
  };
  let rendered: string;
  try {
    rendered = renderTemplate(template, variables);
  } catch (err) {
    const message = String((err as Error)?.message ?? err).slice(0, 300);
    const what = err instanceof TemplateRaised ? 'refused the messages' : err instanceof TemplateLimit ? 'was stopped' : 'failed';
    throw new LoRAError('E_FORMAT', `${where} ${what}: ${message}`, { cause: err });
  }
  return options.continueFinalMessage ? cutAfterFinalMessage(rendered, messages, where) : rendered;
}

/**
 * The token ids of a conversation: the rendered template encoded without adding special tokens,
 * as transformers `apply_chat_template(tokenize=True)` does, since the template writes BOS itself.
 */
export function encodeChat(tokenizer: Tokenizer, messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): number[] {
  return tokenizer.encode(applyChatTemplate(tokenizer, messages, options), { addSpecialTokens: false });
}
