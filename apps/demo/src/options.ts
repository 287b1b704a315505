import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type LoRAConfig, LoRAError } from '@lora/core';
import { type DemoModelConfig, PRESETS } from './presets.js';

export const HELP = `pnpm demo [options]

Serves a queue of requests, each with its own LoRA adapter (or none), through a Llama-shaped model
built from @lora/core layers, with continuous batching; checks every request against its adapter
merged into the weights, and reports tokens/s with and without LoRA.

  --preset tiny|default|small   model size (default: default = 4 layers, hidden 512, vocab 4096)
  --backend NAME                LoRA backend (also LORA_BACKEND or "backend" in the config file; default cpu)
  --config FILE                 a LoRAConfig JSON file (default: ./lora.config.json if present)
  --adapters DIR[,DIR...]       also serve your own PEFT adapter directories
  --requests N                  requests in the queue (default 8)
  --max-new-tokens N            tokens generated per request (default 8)
  --cache DIR                   where the demo writes its adapters (default .lora-cache)
  --one-batch                   admit every request at once, ignoring maxLoras (shows E_CAPACITY)
  --help`;

export interface DemoOptions {
  model: DemoModelConfig;
  lora: LoRAConfig & { backend: string };
  userAdapters: string[];
  requests: number;
  maxNewTokens: number;
  cacheDir: string;
  oneBatch: boolean;
  help: boolean;
}

const config = (message: string): never => {
  throw new LoRAError('E_CONFIG', message);
};

function positive(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
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

/** Flags > LORA_BACKEND > config file > defaults. Every mistake is a LoRAError with one clear line. */
export function parseOptions(argv: string[], env: Record<string, string | undefined>): DemoOptions {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        preset: { type: 'string' },
        backend: { type: 'string' },
        config: { type: 'string' },
        adapters: { type: 'string' },
        requests: { type: 'string' },
        'max-new-tokens': { type: 'string' },
        cache: { type: 'string' },
        'one-batch': { type: 'boolean' },
        help: { type: 'boolean' },
      },
    }));
  } catch (err) {
    return config(`${(err as Error).message} (see --help)`);
  }
  // Paths are the user's: relative to where they typed the command (npm/pnpm set INIT_CWD), not to this package.
  const userPath = (p: string) => resolve(env.INIT_CWD ?? process.cwd(), p);
  const presetName = (values.preset as string | undefined) ?? 'default';
  const model = PRESETS[presetName] ?? config(`unknown preset "${presetName}"; expected one of ${Object.keys(PRESETS).join(', ')}`);
  const file = readConfigFile(userPath((values.config as string | undefined) ?? 'lora.config.json'), values.config !== undefined);
  const backend = (values.backend as string | undefined) ?? env.LORA_BACKEND ?? (file.backend as string | undefined) ?? 'cpu';
  if (typeof backend !== 'string') config(`backend must be a name such as "cpu", got ${JSON.stringify(backend)}`);
  return {
    model,
    // Demo defaults: fewer slots than adapters, so eviction and re-activation happen.
    lora: { maxLoras: 3, maxLoraRank: 32, maxCpuLoras: 8, ...file, backend } as LoRAConfig & { backend: string },
    userAdapters: ((values.adapters as string | undefined) ?? '').split(',').filter(Boolean).map(userPath),
    requests: positive(values.requests as string | undefined, '--requests', 8),
    maxNewTokens: positive(values['max-new-tokens'] as string | undefined, '--max-new-tokens', 8),
    cacheDir: values.cache !== undefined ? userPath(values.cache as string) : '.lora-cache',
    oneBatch: values['one-batch'] === true,
    help: values.help === true,
  };
}
