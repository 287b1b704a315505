import type { ServerContext } from '../context.js';
import { readJsonObject } from '../http/body.js';
import { ApiError, badParam } from '../http/errors.js';
import type { AdapterSource } from '../models.js';
import { Fields } from '../openai/fields.js';

/**
 * Turns a client's `lora_path` into an adapter source, or refuses it (403 outside the allowed
 * root, 404 missing). The Node server's resolver confines paths to `--lora-root`
 * (`@lora/server/node` `loraRootResolver`); a Service Worker could resolve names to URLs.
 */
export type LoraPathResolver = (path: string) => Promise<AdapterSource>;

const text = (body: string) => new Response(body, { headers: { 'content-type': 'text/plain; charset=utf-8' } });

/**
 * POST /v1/load_lora_adapter `{ lora_name, lora_path }` — vLLM `entrypoints/openai/serving_models.py`
 * `load_lora_adapter`: both fields required (400), a name already served is 400, the adapter is
 * loaded and registered before the answer (a bad adapter fails here with 400, not on its first
 * request), and success is vLLM's plain-text sentence.
 */
export async function loadLoraAdapter(ctx: ServerContext, request: Request, resolve: LoraPathResolver | undefined): Promise<Response> {
  const f = new Fields(await readJsonObject(request, ctx.maxBodyBytes));
  const name = f.string('lora_name');
  const path = f.string('lora_path');
  if (!name) throw badParam('lora_name', "Both 'lora_name' and 'lora_path' must be provided.", 'missing_required_parameter');
  if (!path) throw badParam('lora_path', "Both 'lora_name' and 'lora_path' must be provided.", 'missing_required_parameter');
  f.onlyOff('load_inplace', (v) => v === false, 'unload the adapter first');
  if (ctx.models.has(name))
    throw new ApiError(400, `The lora adapter '${name}' has already been loaded.`, { param: 'lora_name', code: 'already_loaded' });
  if (resolve === undefined) {
    throw new ApiError(403, 'this server loads no adapters from paths: start it with --lora-root DIR to allow adapters under DIR', {
      param: 'lora_path',
      code: 'lora_root_required',
    });
  }
  await ctx.models.add(name, await resolve(path));
  return text(`Success: LoRA adapter '${name}' added successfully.`);
}

/**
 * POST /v1/unload_lora_adapter `{ lora_name }` — vLLM `unload_lora_adapter`: 404 for a name not
 * served; the name is gone for new requests at once, accepted requests finish with the adapter
 * (see `ServedModels`).
 */
export async function unloadLoraAdapter(ctx: ServerContext, request: Request): Promise<Response> {
  const f = new Fields(await readJsonObject(request, ctx.maxBodyBytes));
  const name = f.string('lora_name');
  if (!name) throw badParam('lora_name', "'lora_name' must be provided.", 'missing_required_parameter');
  ctx.models.remove(name);
  return text(`Success: LoRA adapter '${name}' removed successfully.`);
}
