import { describeValue } from '@lora/core';
import type { ChatMessage } from '@lora/llama';
import { badParam } from '../http/errors.js';
import { Fields } from './fields.js';
import { type GenerationOptions, readGenerationOptions } from './sampling.js';

export interface ChatRequest extends GenerationOptions {
  readonly messages: ChatMessage[];
  readonly addGenerationPrompt: boolean;
  readonly continueFinalMessage: boolean;
  readonly templateVariables: Record<string, unknown>;
}

/**
 * A message's content as the template gets it: text, or OpenAI content parts of type `text`,
 * joined with "\n" as vLLM `entrypoints/chat_utils.py` does for text-only parts. Images, audio and
 * files are refused (the model reads text only).
 */
function readContent(content: unknown, i: number): string | null {
  if (content === undefined || content === null || typeof content === 'string') return content ?? null;
  if (!Array.isArray(content)) {
    throw badParam('messages', `messages[${i}].content must be a string or a list of content parts, got ${describeValue(content)}`);
  }
  return content
    .map((part, j) => {
      const p = part as { type?: unknown; text?: unknown } | null;
      if (p === null || typeof p !== 'object' || p.type !== 'text' || typeof p.text !== 'string') {
        throw badParam(
          'messages',
          `messages[${i}].content[${j}] must be a {"type": "text", "text": ...} part (this model reads text only), got ${describeValue(p?.type ?? p)}`,
        );
      }
      return p.text;
    })
    .join('\n');
}

/**
 * A /v1/chat/completions body. `max_completion_tokens` wins over the deprecated `max_tokens`;
 * without either the request may use the rest of the context (OpenAI and vLLM). vLLM's
 * `add_generation_prompt`, `continue_final_message` and `chat_template_kwargs` are read; tools,
 * a client-sent `chat_template` and non-text response formats are refused.
 */
export function parseChatRequest(body: Record<string, unknown>): ChatRequest {
  const f = new Fields(body);
  const raw = f.raw('messages');
  if (!Array.isArray(raw) || raw.length === 0) {
    throw badParam('messages', `messages must be a non-empty list of {role, content}, got ${describeValue(raw)}`);
  }
  const messages = raw.map((m, i): ChatMessage => {
    if (m === null || typeof m !== 'object' || Array.isArray(m) || typeof (m as { role?: unknown }).role !== 'string') {
      throw badParam('messages', `messages[${i}] must be an object with a string role, got ${describeValue(m)}`);
    }
    const { role, content, name } = m as { role: string; content?: unknown; name?: unknown };
    return { role, content: readContent(content, i), ...(typeof name === 'string' ? { name } : {}) };
  });
  const maxTokens = f.integer('max_completion_tokens', 1) ?? f.integer('max_tokens', 1);
  const addGenerationPrompt = f.boolean('add_generation_prompt') ?? true;
  const continueFinalMessage = f.boolean('continue_final_message') ?? false;
  if (addGenerationPrompt && continueFinalMessage && f.has('add_generation_prompt')) {
    // vLLM `ChatCompletionRequest.check_generation_prompt`.
    throw badParam('continue_final_message', 'continue_final_message and add_generation_prompt cannot both be true');
  }
  const kwargs = f.raw('chat_template_kwargs');
  if (kwargs !== undefined && (typeof kwargs !== 'object' || Array.isArray(kwargs))) {
    throw badParam('chat_template_kwargs', `chat_template_kwargs must be an object, got ${describeValue(kwargs)}`);
  }
  f.onlyOff('tools', (v) => Array.isArray(v) && v.length === 0, 'no tool calling');
  f.onlyOff('tool_choice', (v) => v === 'none', 'no tool calling');
  f.onlyOff('functions', (v) => Array.isArray(v) && v.length === 0, 'no tool calling');
  f.onlyOff('chat_template', () => false, "the model's own template is used");
  f.onlyOff('response_format', (v) => (v as { type?: unknown }).type === 'text', 'text only');
  return {
    ...readGenerationOptions(f, maxTokens),
    messages,
    addGenerationPrompt: addGenerationPrompt && !continueFinalMessage,
    continueFinalMessage,
    templateVariables: (kwargs ?? {}) as Record<string, unknown>,
  };
}
