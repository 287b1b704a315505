import { isLoRAError } from '@lora/core';
import type { GenerationDelta, GenerationResult, RequestHandle, SamplingParams } from '@lora/llama';
import type { ServerContext } from './context.js';
import { ApiError, badParam, fromLoRAError } from './http/errors.js';
import type { Lease } from './models.js';

export interface Admitted {
  readonly id: string;
  readonly handle: RequestHandle;
  readonly lease: Lease;
  /** performance.now() when the HTTP request arrived. */
  readonly arrival: number;
  readonly sampling: SamplingParams;
  /** The prompt as token ids (a text prompt encoded as the engine would, special tokens added). */
  readonly promptIds: readonly number[];
}

/** Which request field an engine refusal is about (its messages use the engine's names). */
function paramOf(err: unknown): string | null {
  if (!isLoRAError(err)) return null;
  if (err.code === 'E_CAPACITY') return /maxTokens/.test(err.message) ? 'max_tokens' : 'prompt';
  if (/\bloraScale\b/.test(err.message)) return 'lora_scale';
  // Engine.add's `adapters` is the server's lora_mix (its messages name `adapters`, a mix or DoRA).
  if (/\badapters\b|\bmix\b|is DoRA/.test(err.message)) return 'lora_mix';
  if (err.code === 'E_INDEX' || /prompt/.test(err.message)) return 'prompt';
  return null;
}

/** A lease on the requested model, and on every adapter of its mix (their runtime ids and weights in `mix`). */
async function leaseAll(
  ctx: ServerContext,
  model: string,
  loraMix: readonly { readonly name: string; readonly weight: number }[] | undefined,
): Promise<Lease & { readonly mix?: readonly { id: string; weight: number }[] }> {
  const lease = await ctx.models.acquire(model);
  if (loraMix === undefined) return lease;
  const held: Lease[] = [];
  const release = () => {
    lease.release();
    for (const l of held) l.release();
  };
  try {
    for (const term of loraMix) {
      // A name not served is this field's 404, not the model's.
      const l = await ctx.models.acquire(term.name).catch((err: unknown) => {
        throw err instanceof ApiError && err.status === 404
          ? new ApiError(404, `lora_mix names \`${term.name}\`, which this server does not serve.`, {
              param: 'lora_mix',
              code: 'model_not_found',
            })
          : err;
      });
      held.push(l);
      if (l.adapter === null) throw badParam('lora_mix', `lora_mix names the base model ${JSON.stringify(term.name)}; list adapters only`);
    }
  } catch (err) {
    release();
    throw err;
  }
  return { ...lease, release, mix: held.map((l, k) => ({ id: l.adapter as string, weight: (loraMix[k] as { weight: number }).weight })) };
}

/**
 * Puts one request into the shared engine: a lease on its model (404 for a name not served),
 * then — synchronously, so nothing can change in between — the queue bound (429 with
 * Retry-After; vLLM has no such bound, its queue grows without limit) and `engine.add`, which
 * checks everything else before the request can reach a batch (400 naming the parameter). A
 * refused request never touches the batch the others run in. When `signal` aborts (the client
 * closed the connection) the request is aborted: its sequence slot and KV cache are freed at the
 * next step boundary.
 */
export async function admit(
  ctx: ServerContext,
  args: {
    id: string;
    model: string;
    prompt: string | readonly number[];
    sampling: SamplingParams;
    /** The adapter's strength (`lora_scale`); 1 when the request gave none. */
    loraScale?: number;
    /** `lora_mix`: served adapter names and weights, with `model` the base model. */
    loraMix?: readonly { readonly name: string; readonly weight: number }[];
    signal: AbortSignal;
    arrival: number;
  },
): Promise<Admitted> {
  const { engine } = ctx;
  let promptIds: readonly number[];
  if (typeof args.prompt === 'string') {
    if (engine.tokenizer === undefined) {
      throw badParam('prompt', `${ctx.models.baseModel} has no tokenizer: send the prompt as a list of token ids`);
    }
    promptIds = engine.tokenizer.encode(args.prompt, { addSpecialTokens: true });
  } else promptIds = args.prompt;
  if (args.loraMix !== undefined && args.model !== ctx.models.baseModel) {
    throw badParam('lora_mix', `lora_mix mixes adapters over the base model: set model to ${JSON.stringify(ctx.models.baseModel)}`);
  }
  const lease = await leaseAll(ctx, args.model, args.loraMix);
  let handle: RequestHandle;
  try {
    if (args.signal.aborted) throw new ApiError(499, 'the client closed the connection', { code: 'client_closed' });
    if (ctx.draining()) throw new ApiError(503, 'the server is shutting down', { code: 'unavailable' });
    if (engine.stats().waiting >= engine.maxQueue) {
      throw new ApiError(429, `the server's queue is full (${engine.maxQueue} requests waiting, --max-queue); try again later`, {
        code: 'queue_full',
        headers: { 'retry-after': String(ctx.retryAfterSeconds) },
      });
    }
    handle = engine.add({
      id: args.id,
      prompt: promptIds,
      ...(lease.mix === undefined ? { adapter: lease.adapter } : { adapters: lease.mix }),
      loraScale: args.loraScale,
      sampling: args.sampling,
    });
  } catch (err) {
    lease.release();
    throw fromLoRAError(err, paramOf(err));
  }
  void handle.result.then((result) => {
    lease.release();
    // Counted here, not where the deltas are read: a stream whose client hung up is never read to its end.
    ctx.metrics?.finished(lease.name, result.finishReason, result.promptIds.length, result.tokenIds.length);
    ctx.metrics?.e2e((performance.now() - args.arrival) / 1000);
  });
  const onAbort = () => handle.abort();
  args.signal.addEventListener('abort', onAbort, { once: true });
  void handle.result.then(() => args.signal.removeEventListener('abort', onAbort));
  return { id: args.id, handle, lease, arrival: args.arrival, sampling: args.sampling, promptIds };
}

/**
 * The request's deltas as the engine produces them, timing each token for the metrics
 * (time to first token from the HTTP request's arrival, then inter-token latency); returns the
 * result. Empty deltas are skipped, except the last.
 */
export async function* timedDeltas(ctx: ServerContext, a: Admitted): AsyncGenerator<GenerationDelta, GenerationResult> {
  const m = ctx.metrics;
  let last: number | undefined;
  for await (const delta of a.handle) {
    const n = delta.tokenIds.length;
    if (n > 0 && m !== undefined) {
      const t = performance.now();
      if (last === undefined) m.firstToken((t - a.arrival) / 1000);
      else for (let i = 0; i < n; i++) m.interToken((t - last) / 1000 / n);
      last = t;
    }
    if (n > 0 || delta.text !== '' || delta.finishReason !== undefined) yield delta;
  }
  return a.handle.result;
}

/** The token id or stop string that ended the request, as vLLM's `stop_reason` (null for EOS and length). */
export function stopReason(result: GenerationResult, sampling: SamplingParams): string | number | null {
  const by = result.stoppedBy;
  if (typeof by === 'string') return by;
  if (typeof by === 'number' && sampling.stopTokenIds?.includes(by)) return by;
  return null;
}

/** A generation that failed (its engine step threw) as the error to answer: 500, or 503 once the engine is closed. */
export function generationError(result: GenerationResult): ApiError | undefined {
  if (result.finishReason === 'error') return fromLoRAError(result.error ?? new Error('generation failed'));
  return undefined;
}
