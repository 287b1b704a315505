import type { ServerContext } from '../context.js';
import { stopReason } from '../generate.js';
import { readJsonObject } from '../http/body.js';
import { type CompletionRequest, parseCompletionRequest } from '../openai/completions.js';
import { completionChoice, completionObject, usage } from '../openai/responses.js';
import { type GenerationShape, type RequestLabel, requireModel, serveGeneration } from './generation.js';

const shape: GenerationShape<CompletionRequest> = {
  idPrefix: 'cmpl',
  start: () => [],
  chunk: (e, req, delta, first, a) =>
    completionObject(
      e,
      [
        completionChoice({
          text: delta.text,
          finish: delta.finishReason,
          ...(req.returnTokenIds ? { tokenIds: delta.tokenIds } : {}),
          // vLLM sends the prompt's ids with the first chunk.
          ...(req.returnTokenIds && first ? { promptTokenIds: a.promptIds } : {}),
        }),
      ],
      undefined,
    ),
  usageChunk: (e, u) => completionObject(e, [], u),
  final: (e, req, result, a) =>
    completionObject(
      e,
      [
        completionChoice({
          text: result.text,
          finish: result.finishReason,
          stopReason: stopReason(result, a.sampling),
          ...(req.returnTokenIds ? { tokenIds: result.tokenIds, promptTokenIds: result.promptIds } : {}),
        }),
      ],
      usage(result),
    ),
};

/** POST /v1/completions. */
export async function completions(ctx: ServerContext, request: Request, arrival: number, label: RequestLabel): Promise<Response> {
  const parsed = parseCompletionRequest(await readJsonObject(request, ctx.maxBodyBytes));
  requireModel(ctx, parsed.model, label);
  return serveGeneration(ctx, { request, arrival, parsed, prompt: parsed.prompt, shape });
}
