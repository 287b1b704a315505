import type { GenerationDelta, GenerationResult } from '@lora/llama';
import type { ServerContext } from '../context.js';
import { type Admitted, admit, generationError, timedDeltas } from '../generate.js';
import { ApiError } from '../http/errors.js';
import { SSE_HEADERS, sseBody } from '../http/sse.js';
import type { Envelope, Usage } from '../openai/responses.js';
import { usage } from '../openai/responses.js';
import type { GenerationOptions } from '../openai/sampling.js';

/** How one endpoint (completions or chat) shapes its objects; the serving around them is shared. */
export interface GenerationShape<R extends GenerationOptions> {
  readonly idPrefix: string;
  /** Stream chunks sent before the first delta (chat: the assistant role). */
  start(e: Envelope, request: R, a: Admitted): readonly object[];
  chunk(e: Envelope, request: R, delta: GenerationDelta, first: boolean, a: Admitted): object;
  /** The last stream chunk of `stream_options.include_usage`: no choices, the usage. */
  usageChunk(e: Envelope, u: Usage): object;
  final(e: Envelope, request: R, result: GenerationResult, a: Admitted): object;
}

/** 404 for a model this server does not serve, before the prompt is looked at (OpenAI checks the model first). */
export function requireModel(ctx: ServerContext, model: string, label: RequestLabel): void {
  if (!ctx.models.has(model)) {
    throw new ApiError(404, `The model \`${model}\` does not exist.`, { param: 'model', code: 'model_not_found' });
  }
  label.model = model;
}

/** What the metrics label a request with, filled in as the handler learns it (only served names: bounded label values). */
export interface RequestLabel {
  model: string;
}

/**
 * Serves one generation request: admission into the shared engine, then either the whole
 * response as JSON or OpenAI's SSE stream (`data: {chunk}` per delta, the usage chunk when asked,
 * `data: [DONE]`). The request counts as in flight until its last byte, so a draining server
 * waits for it. A client that disconnects aborts its request: the request's AbortSignal for a
 * JSON response, the stream's cancel for SSE.
 */
export async function serveGeneration<R extends GenerationOptions>(
  ctx: ServerContext,
  args: { request: Request; arrival: number; parsed: R; prompt: string | readonly number[]; shape: GenerationShape<R> },
): Promise<Response> {
  const { parsed, shape } = args;
  const done = ctx.inFlight.begin();
  let streaming = false;
  try {
    const id = `${shape.idPrefix}-${crypto.randomUUID().replaceAll('-', '')}`;
    const a = await admit(ctx, {
      id,
      model: parsed.model,
      prompt: args.prompt,
      sampling: parsed.sampling,
      loraScale: parsed.loraScale,
      loraMix: parsed.loraMix,
      signal: args.request.signal,
      arrival: args.arrival,
    });
    const env: Envelope = { id, created: Math.floor(Date.now() / 1000), model: parsed.model };
    if (!parsed.stream) {
      const it = timedDeltas(ctx, a);
      let step = await it.next();
      while (!step.done) step = await it.next();
      const result = step.value;
      const err = generationError(result);
      if (err) throw err;
      if (result.finishReason === 'abort' && ctx.draining())
        throw new ApiError(503, 'the server shut down before the request finished', { code: 'unavailable' });
      return Response.json(shape.final(env, parsed, result, a));
    }
    streaming = true;
    return new Response(sseBody(events(ctx, a, env, parsed, shape), { onCancel: () => a.handle.abort(), onClose: done }), {
      headers: SSE_HEADERS,
    });
  } finally {
    if (!streaming) done();
  }
}

async function* events<R extends GenerationOptions>(
  ctx: ServerContext,
  a: Admitted,
  env: Envelope,
  parsed: R,
  shape: GenerationShape<R>,
): AsyncGenerator<string, void> {
  // With include_usage every chunk carries `usage: null` and the extra last one the numbers (OpenAI's stream_options).
  const withUsage = (chunk: object) => JSON.stringify(parsed.includeUsage ? { ...chunk, usage: null } : chunk);
  for (const chunk of shape.start(env, parsed, a)) yield withUsage(chunk);
  const it = timedDeltas(ctx, a);
  let first = true;
  let step = await it.next();
  while (!step.done) {
    yield withUsage(shape.chunk(env, parsed, step.value, first, a));
    first = false;
    step = await it.next();
  }
  const result = step.value;
  const err = generationError(result);
  // vLLM streams an error that happens after the response started as a `data: {"error": ...}` event.
  if (err) yield JSON.stringify(err.body());
  if (parsed.includeUsage) yield JSON.stringify(shape.usageChunk(env, usage(result)));
  yield '[DONE]';
}
