import { isLoRAError, type LoRAError } from '@lora/core';

/**
 * OpenAI's error body, `{ "error": { message, type, param, code } }` (what the official clients
 * parse into `APIError`; vLLM's `ErrorResponse` has the same shape since it wrapped `ErrorInfo`).
 * `type` follows OpenAI's names; `code` is a short machine-readable reason or null.
 */
export interface OpenAIErrorBody {
  /** The error itself: OpenAI's clients read everything from this one key. */
  readonly error: {
    /** The sentence for a person, without core's `[E_CODE] ` prefix (that goes in `code`). */
    readonly message: string;
    /** OpenAI's error type: `invalid_request_error` (4xx other than 429), `rate_limit_error` (429) or `server_error` (5xx). */
    readonly type: string;
    /** The machine-readable reason (`model_not_found`, `queue_full`, `context_length_exceeded`, ...), or null. */
    readonly code: string | null;
    /** The request field at fault, by its OpenAI/vLLM name (`model`, `max_tokens`, `lora_name`, ...), or null. */
    readonly param: string | null;
  };
}

// OpenAI answers client errors (400, 401, 403, 404) with type `invalid_request_error` and says
// what went wrong in `code` (`invalid_api_key`, `model_not_found`, ...); the clients map the
// status, not the type, to an exception class.
const typeOf = (status: number): string => (status === 429 ? 'rate_limit_error' : status >= 500 ? 'server_error' : 'invalid_request_error');

/** An error answered to the client: status, OpenAI body, and headers such as Retry-After. */
export class ApiError extends Error {
  /** The HTTP status of the response (4xx or 5xx; 499 when the client closed the connection). */
  readonly status: number;
  /**
   * OpenAI's error `type` in the body; unless given, derived from the status as OpenAI does:
   * `rate_limit_error` for 429, `server_error` for 5xx, `invalid_request_error` otherwise.
   */
  readonly type: string;
  /** The body's `code`: a short machine-readable reason (`model_not_found`, `queue_full`, ...), or null. */
  readonly code: string | null;
  /** The body's `param`: the request field at fault, by its OpenAI/vLLM name, or null. */
  readonly param: string | null;
  /** Response headers besides content-type, such as `retry-after` on 429 or `connection: close` on 413 and 503. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    status: number,
    message: string,
    options: { code?: string | null; param?: string | null; type?: string; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'ApiError';
    this.status = status;
    this.type = options.type ?? typeOf(status);
    this.code = options.code ?? null;
    this.param = options.param ?? null;
    this.headers = options.headers ?? {};
  }

  /** The JSON body to answer with: this error's message, type, code and param in OpenAI's shape. */
  body(): OpenAIErrorBody {
    return { error: { message: this.message, type: this.type, code: this.code, param: this.param } };
  }

  /** The error as a Response: {@link ApiError.status}, `content-type: application/json`, {@link ApiError.headers}, and {@link ApiError.body} as JSON. */
  response(): Response {
    return new Response(JSON.stringify(this.body()), {
      status: this.status,
      headers: { 'content-type': 'application/json', ...this.headers },
    });
  }
}

/** A 400 naming the request field that is wrong. */
export const badParam = (param: string, message: string, code = 'invalid_value'): ApiError => new ApiError(400, message, { param, code });

// The engine's sampling parameters by their OpenAI/vLLM request names.
const PARAM_NAMES: Record<string, string> = {
  temperature: 'temperature',
  topP: 'top_p',
  topK: 'top_k',
  seed: 'seed',
  maxTokens: 'max_tokens',
  stop: 'stop',
  stopTokenIds: 'stop_token_ids',
  ignoreEos: 'ignore_eos',
  includeStopStrInOutput: 'include_stop_str_in_output',
};

/** The message without core's `[E_CODE] ` prefix: clients get the sentence, the code goes in `code`. */
export const plainMessage = (err: LoRAError): string => err.message.replace(/^\[E_[A-Z_]+\] /, '');

/**
 * A LoRAError from the engine, a loader or the adapter manager as an HTTP error: bad requests
 * (E_CONFIG, E_INDEX, adapter files that are malformed, too large a rank, unsupported fields) are
 * 400, E_NOT_FOUND is 404, E_CAPACITY is 400 `context_length_exceeded` (the queue-full case is
 * answered before the engine is asked, see generate.ts), a closed engine is 503, anything else 500.
 */
export function fromLoRAError(err: unknown, fallbackParam: string | null = null): ApiError {
  if (err instanceof ApiError) return err;
  if (!isLoRAError(err)) return new ApiError(500, 'internal server error', { cause: err });
  const message = plainMessage(err);
  switch (err.code) {
    case 'E_CONFIG': {
      const named = /^sampling parameter (\w+)/.exec(message)?.[1];
      return new ApiError(400, message, { param: (named && PARAM_NAMES[named]) ?? fallbackParam, code: 'invalid_value', cause: err });
    }
    case 'E_INDEX':
      return new ApiError(400, message, { param: fallbackParam ?? 'prompt', code: 'invalid_value', cause: err });
    case 'E_CAPACITY':
      return new ApiError(400, message, { param: fallbackParam, code: 'context_length_exceeded', cause: err });
    case 'E_NOT_FOUND':
      return new ApiError(404, message, { param: fallbackParam, code: 'not_found', cause: err });
    case 'E_FORMAT':
    case 'E_RANK':
    case 'E_SHAPE':
    case 'E_UNSUPPORTED':
      return new ApiError(400, message, { param: fallbackParam, code: err.code.slice(2).toLowerCase(), cause: err });
    case 'E_DISPOSED':
      return new ApiError(503, 'the server is shutting down', { code: 'unavailable', cause: err });
    default:
      return new ApiError(500, message, { code: 'server_error', cause: err });
  }
}
