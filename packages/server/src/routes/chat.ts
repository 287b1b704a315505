import { isLoRAError } from '@lora/core';
import { encodeChat } from '@lora/llama';
import type { ServerContext } from '../context.js';
import { stopReason } from '../generate.js';
import { readJsonObject } from '../http/body.js';
import { ApiError, badParam, plainMessage } from '../http/errors.js';
import { type ChatRequest, parseChatRequest } from '../openai/chat.js';
import { chatChoice, chatObject, usage } from '../openai/responses.js';
import { type GenerationShape, type RequestLabel, requireModel, serveGeneration } from './generation.js';

const shape: GenerationShape<ChatRequest> = {
  idPrefix: 'chatcmpl',
  // OpenAI's and vLLM's first chat chunk: the role, empty content (and vLLM's prompt ids).
  start: (e, req, a) => [
    chatObject(
      e,
      true,
      [chatChoice({ role: 'assistant', content: '', finish: undefined, stream: true })],
      undefined,
      req.returnTokenIds ? a.promptIds : undefined,
    ),
  ],
  chunk: (e, req, delta) =>
    chatObject(
      e,
      true,
      [
        chatChoice({
          content: delta.text,
          finish: delta.finishReason,
          stream: true,
          ...(req.returnTokenIds ? { tokenIds: delta.tokenIds } : {}),
        }),
      ],
      undefined,
    ),
  usageChunk: (e, u) => chatObject(e, true, [], u),
  final: (e, req, result, a) =>
    chatObject(
      e,
      false,
      [
        chatChoice({
          content: result.text,
          finish: result.finishReason,
          stream: false,
          stopReason: stopReason(result, a.sampling),
          ...(req.returnTokenIds ? { tokenIds: result.tokenIds } : {}),
        }),
      ],
      usage(result),
      req.returnTokenIds ? result.promptIds : undefined,
    ),
};

/** The conversation through the tokenizer's chat template, as token ids (templates write BOS themselves). */
function promptOf(ctx: ServerContext, req: ChatRequest): number[] {
  const { tokenizer } = ctx.engine;
  if (tokenizer === undefined) {
    throw badParam('messages', `${ctx.models.baseModel} has no tokenizer, so it has no chat template: use /v1/completions with token ids`);
  }
  try {
    return encodeChat(tokenizer, req.messages, {
      addGenerationPrompt: req.addGenerationPrompt,
      continueFinalMessage: req.continueFinalMessage,
      variables: req.templateVariables,
    });
  } catch (err) {
    // No template (E_NOT_FOUND), a template that fails or raises on these messages (E_FORMAT): the request, not the server.
    if (isLoRAError(err)) throw badParam('messages', plainMessage(err), 'chat_template_error');
    throw new ApiError(500, 'the chat template failed', { cause: err });
  }
}

/** POST /v1/chat/completions. */
export async function chatCompletions(ctx: ServerContext, request: Request, arrival: number, label: RequestLabel): Promise<Response> {
  const parsed = parseChatRequest(await readJsonObject(request, ctx.maxBodyBytes));
  requireModel(ctx, parsed.model, label);
  return serveGeneration(ctx, { request, arrival, parsed, prompt: promptOf(ctx, parsed), shape });
}
