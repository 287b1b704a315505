import { ApiError } from './errors.js';

/** Default bound on a request body (OpenAI-style JSON requests are far smaller). */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/**
 * Reads a request body as JSON, refusing more than `maxBytes` with 413 — from Content-Length
 * before reading anything, and while reading, for bodies without one (chunked) or that lie about
 * it — and a body that is not a JSON object with 400.
 */
export async function readJsonObject(request: Request, maxBytes: number): Promise<Record<string, unknown>> {
  // Connection: close — the rest of the body is still on its way; the client must not reuse this connection.
  const tooLarge = () =>
    new ApiError(413, `the request body is larger than ${maxBytes} bytes`, { code: 'request_too_large', headers: { connection: 'close' } });
  const declared = Number(request.headers.get('content-length') ?? Number.NaN);
  if (declared > maxBytes) throw tooLarge();
  const chunks: Uint8Array[] = [];
  let total = 0;
  if (request.body !== null) {
    const reader = request.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        await reader.cancel().catch(() => {});
        throw tooLarge();
      }
      chunks.push(value);
    }
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.byteLength;
  }
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    const why = err instanceof SyntaxError ? err.message : 'it is not UTF-8';
    throw new ApiError(400, `the request body is not valid JSON: ${why}`, { code: 'invalid_json', cause: err });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ApiError(400, 'the request body must be a JSON object', { code: 'invalid_json' });
  }
  return value as Record<string, unknown>;
}
