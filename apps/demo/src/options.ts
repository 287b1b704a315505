import { existsSync, readFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type LoRAConfig, LoRAError } from '@lora/core';
import { DEMO_PRESETS, type DemoPreset, demoPreset } from '@lora/llama/demo';

export const HELP = `npm run demo -- [options]

Without --model or prompts: serves a queue of requests, each with its own LoRA adapter (or none),
through a seeded Llama checkpoint built in memory (nothing to download), with continuous batching
and fewer device slots than adapters; checks every request against its adapter merged into the
weights (PASS/FAIL) and reports tokens/s with and without LoRA. It also writes that model and its
PEFT adapters under --cache, so they can be served like downloaded ones (--model, --adapters).

With prompts (--prompt / --prompt-ids): generates for every prompt with every adapter and without
one, on the embedded model or a real checkpoint (--model), and prints each request's text.

Model and adapters
  --preset ${Object.keys(DEMO_PRESETS).join('|').padEnd(20)} embedded model size (default: default = 4 layers, hidden 512, vocab 4096)
  --model DIR|ORG/NAME[@REV]    a Hugging Face checkpoint: a directory or a Hub repository (HF_ENDPOINT, HF_HOME, HF_TOKEN apply)
  --adapters NAME=DIR|ID,...    PEFT adapters (a directory or a Hub repository; NAME= optional: default the directory's name)
  --save DIR                    write the embedded model (DIR/model) and the demo adapters (DIR/<id>) and exit
Prompts
  --prompt TEXT                 a text prompt (repeatable; needs the model's tokenizer.json)
  --prompt-ids 1,2,3            a prompt as token ids (repeatable)
  --chat                        wrap each text prompt as a user message with the model's chat template
  --max-tokens N                tokens to generate per request (default 8 in the session, 32 with prompts)
  --temperature T               0 = greedy (default), otherwise sampled
  --seed N                      sampling seed
  --json                        print one JSON document {"requests":[{adapter, prompt_ids, generated_ids, text}]} and nothing else on stdout
Serving
  --backend NAME                LoRA backend (also LORA_BACKEND or "backend" in the config file; default cpu)
  --config FILE                 a LoRAConfig JSON file (default: ./lora.config.json if present)
  --requests N                  requests in the session's queue (default 8)
  --rounds N                    rounds of the with/without-LoRA passes the overhead is the median of (default 5)
  --cache DIR                   where the embedded model and adapters are written (default .lora-cache)
  --help`;

export interface DemoOptions {
  preset: DemoPreset;
  /** The user's LoRA config (file and --backend); limits the demo does not set itself are filled per mode. */
  lora: LoRAConfig & { backend: string };
  /** Keys the user set in the config file: the demo's own defaults never override them. */
  loraFromFile: ReadonlySet<string>;
  model: string | undefined;
  adapters: { name: string; spec: string }[];
  prompts: ({ text: string } | { ids: number[] })[];
  chat: boolean;
  maxTokens: number | undefined;
  temperature: number;
  seed: number | undefined;
  json: boolean;
  save: string | undefined;
  requests: number;
  /** Rounds of the two passes the session's overhead is the median of. */
  rounds: number;
  cacheDir: string;
  help: boolean;
}

const config = (message: string): never => {
  throw new LoRAError('E_CONFIG', message);
};

function positive(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) config(`${flag} must be a positive integer, got "${value}"`);
  return n;
}

function readConfigFile(path: string, required: boolean): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return required ? config(`config file ${path} cannot be read`) : {};
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    config(`${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) config(`${path} must hold a LoRAConfig object`);
  return parsed as Record<string, unknown>;
}

function promptIds(value: string): number[] {
  const ids = value.split(',').map((s) => s.trim());
  if (ids.length === 0 || ids.some((s) => !/^\d+$/.test(s)))
    config(`--prompt-ids must be comma-separated token ids such as 1,2,3, got "${value}"`);
  return ids.map(Number);
}

/**
 * A model or adapter argument: a URL as is; a path that exists where the user typed the command
 * (or that plainly is a path) resolved there; anything else is kept as a Hub repository id.
 */
function userSpec(spec: string, userPath: (p: string) => string): string {
  if (/^https?:\/\//i.test(spec)) return spec;
  const local = userPath(spec);
  return existsSync(local) || spec.startsWith('.') || spec.startsWith('/') ? local : spec;
}

/** `NAME=SPEC` or `SPEC` (named after its last path segment). */
function adapterSpecs(value: string, userPath: (p: string) => string): { name: string; spec: string }[] {
  return value
    .split(',')
    .filter(Boolean)
    .map((entry) => {
      const eq = entry.indexOf('=');
      const [name, spec] = eq > 0 ? [entry.slice(0, eq), entry.slice(eq + 1)] : [undefined, entry];
      if (spec.length === 0) config(`--adapters entry "${entry}" has no directory or Hub id`);
      return { name: name ?? basename(spec.replace(/@.*$/, '')), spec: userSpec(spec, userPath) };
    });
}

/** Flags > LORA_BACKEND > config file > defaults. Every mistake is a LoRAError with one clear line. */
export function parseOptions(argv: string[], env: Record<string, string | undefined>): DemoOptions {
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        preset: { type: 'string' },
        model: { type: 'string' },
        adapters: { type: 'string' },
        save: { type: 'string' },
        prompt: { type: 'string', multiple: true },
        'prompt-ids': { type: 'string', multiple: true },
        chat: { type: 'boolean' },
        'max-tokens': { type: 'string' },
        'max-new-tokens': { type: 'string' },
        temperature: { type: 'string' },
        seed: { type: 'string' },
        json: { type: 'boolean' },
        backend: { type: 'string' },
        config: { type: 'string' },
        requests: { type: 'string' },
        rounds: { type: 'string' },
        cache: { type: 'string' },
        help: { type: 'boolean' },
      },
    }));
  } catch (err) {
    return config(`${(err as Error).message} (see --help)`);
  }
  // Paths are the user's: relative to where they typed the command (npm/pnpm set INIT_CWD), not to this package.
  const userPath = (p: string) => resolve(env.INIT_CWD ?? process.cwd(), p);
  const str = (k: string) => values[k] as string | undefined;
  const file = readConfigFile(userPath(str('config') ?? 'lora.config.json'), str('config') !== undefined);
  const backend = str('backend') ?? env.LORA_BACKEND ?? (file.backend as string | undefined) ?? 'cpu';
  if (typeof backend !== 'string') config(`backend must be a name such as "cpu", got ${JSON.stringify(backend)}`);
  const temperature = str('temperature') === undefined ? 0 : Number(str('temperature'));
  if (!Number.isFinite(temperature) || temperature < 0) config(`--temperature must be a number ≥ 0, got "${str('temperature')}"`);
  const seed = str('seed') === undefined ? undefined : Number(str('seed'));
  if (seed !== undefined && !Number.isSafeInteger(seed)) config(`--seed must be an integer, got "${str('seed')}"`);
  const prompts = [
    ...((values.prompt as string[] | undefined) ?? []).map((text) => ({ text })),
    ...((values['prompt-ids'] as string[] | undefined) ?? []).map((v) => ({ ids: promptIds(v) })),
  ];
  const model = str('model');
  return {
    preset: demoPreset(str('preset') ?? 'default'),
    lora: { ...file, backend } as LoRAConfig & { backend: string },
    loraFromFile: new Set(Object.keys(file)),
    model: model === undefined ? undefined : userSpec(model, userPath),
    adapters: adapterSpecs(str('adapters') ?? '', userPath),
    prompts,
    chat: values.chat === true,
    maxTokens: positive(str('max-tokens') ?? str('max-new-tokens'), '--max-tokens'),
    temperature,
    seed,
    json: values.json === true,
    save: str('save') === undefined ? undefined : userPath(str('save') as string),
    requests: positive(str('requests'), '--requests') ?? 8,
    rounds: positive(str('rounds'), '--rounds') ?? 5,
    cacheDir: userPath(str('cache') ?? '.lora-cache'),
    help: values.help === true,
  };
}
