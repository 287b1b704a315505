import { ApiError } from './errors.js';

const digest = async (text: string): Promise<Uint8Array> =>
  new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));

/**
 * Checks `Authorization: Bearer <key>` in constant time: both sides are hashed to 32 bytes first,
 * so neither the key's length nor the position of the first wrong character changes the time the
 * comparison takes (the Web Crypto digest keeps this free of Node imports).
 */
export function bearerKeyCheck(apiKey: string): (request: Request) => Promise<void> {
  const expected = digest(apiKey);
  return async (request) => {
    const header = request.headers.get('authorization') ?? '';
    const match = /^Bearer (.+)$/i.exec(header);
    if (match === null) {
      throw new ApiError(401, 'missing API key: send it as "Authorization: Bearer <key>"', { code: 'invalid_api_key' });
    }
    const [a, b] = await Promise.all([expected, digest(match[1] as string)]);
    let diff = 0;
    for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
    if (diff !== 0) throw new ApiError(401, 'incorrect API key provided', { code: 'invalid_api_key' });
  };
}
