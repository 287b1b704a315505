import type { FinishReason, GenerationResult } from '@lora/llama';

/** OpenAI's `usage` object. */
export interface Usage {
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
  readonly total_tokens: number;
  /** Prompt tokens served from the prefix cache (`--enable-prefix-caching`); present only when some were, as vLLM does. */
  readonly prompt_tokens_details?: { readonly cached_tokens: number };
}

/** A finished generation's usage: its prompt and generated tokens, and the prompt tokens the prefix cache served. */
export const usage = (result: GenerationResult): Usage => ({
  prompt_tokens: result.promptIds.length,
  completion_tokens: result.tokenIds.length,
  total_tokens: result.promptIds.length + result.tokenIds.length,
  ...(result.cachedTokens > 0 ? { prompt_tokens_details: { cached_tokens: result.cachedTokens } } : {}),
});

/** OpenAI's finish reasons, plus vLLM's `abort` for a request that was aborted (client gone, shutdown). */
export type ApiFinishReason = 'stop' | 'length' | 'abort';

const finishReason = (r: FinishReason | undefined): ApiFinishReason | null => (r === undefined ? null : r === 'error' ? 'abort' : r);

/** The fields every completion object and chunk starts with. */
export interface Envelope {
  readonly id: string;
  readonly created: number;
  readonly model: string;
}

/** One choice of /v1/completions (vLLM adds `stop_reason`, and `token_ids` / `prompt_token_ids` with `return_token_ids`). */
export function completionChoice(args: {
  text: string;
  finish: FinishReason | undefined;
  stopReason?: string | number | null;
  tokenIds?: readonly number[];
  promptTokenIds?: readonly number[];
}) {
  return {
    index: 0,
    text: args.text,
    logprobs: null,
    finish_reason: finishReason(args.finish),
    ...(args.stopReason !== undefined ? { stop_reason: args.stopReason } : {}),
    ...(args.promptTokenIds !== undefined ? { prompt_token_ids: args.promptTokenIds } : {}),
    ...(args.tokenIds !== undefined ? { token_ids: args.tokenIds } : {}),
  };
}

export const completionObject = (e: Envelope, choices: readonly unknown[], u: Usage | null | undefined) => ({
  id: e.id,
  object: 'text_completion',
  created: e.created,
  model: e.model,
  choices,
  ...(u !== undefined ? { usage: u } : {}),
});

/** One choice of /v1/chat/completions: a whole message, or in a stream a delta of one. */
export function chatChoice(args: {
  content: string | undefined;
  role?: 'assistant';
  finish: FinishReason | undefined;
  stream: boolean;
  stopReason?: string | number | null;
  tokenIds?: readonly number[];
}) {
  const message = { ...(args.role ? { role: args.role } : {}), ...(args.content !== undefined ? { content: args.content } : {}) };
  return {
    index: 0,
    ...(args.stream ? { delta: message } : { message: { role: 'assistant', content: args.content ?? '' } }),
    logprobs: null,
    finish_reason: finishReason(args.finish),
    ...(args.stopReason !== undefined ? { stop_reason: args.stopReason } : {}),
    ...(args.tokenIds !== undefined ? { token_ids: args.tokenIds } : {}),
  };
}

export const chatObject = (
  e: Envelope,
  stream: boolean,
  choices: readonly unknown[],
  u: Usage | null | undefined,
  promptTokenIds?: readonly number[],
) => ({
  id: e.id,
  object: stream ? 'chat.completion.chunk' : 'chat.completion',
  created: e.created,
  model: e.model,
  choices,
  ...(u !== undefined ? { usage: u } : {}),
  // vLLM `return_token_ids`: the chat prompt's ids on the response (the first chunk of a stream).
  ...(promptTokenIds !== undefined ? { prompt_token_ids: promptTokenIds } : {}),
});
