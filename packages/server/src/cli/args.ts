import type { AdapterArg, ServingOptions } from '../node/load.js';

export interface CliOptions extends ServingOptions {
  readonly help: boolean;
  readonly host: string;
  readonly port: number;
  /** Seconds requests in flight get to finish after SIGTERM/SIGINT. */
  readonly drainTimeout: number;
}

/** A flag the user got wrong: reported as one line on stderr, exit status 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export const HELP = `lora-serve: an OpenAI-compatible multi-LoRA server (vLLM's LoRA API) on TensorFlow.js

Usage: lora-serve [options]            (in this repository: npm run serve -- [options])

Model
  --model DIR|ORG/NAME       a Hugging Face checkpoint directory or Hub repository id
                             (default: the embedded demo model, nothing downloaded)
  --preset NAME              the embedded model: tiny, default, small, smollm2 or qwen2.5 (default: default)
  --served-model-name NAME   the base model's name in requests (default: the --model value, or demo-<preset>)
  --adapters NAME=DIR|ORG/NAME,...  LoRA adapters to serve; requests select one with "model": NAME
                             (default with the embedded model: its four demo adapters)
  --backend NAME             LoRA backend (default: cpu)

LoRA and batching (vLLM's flags)
  --max-loras N              adapters in one batch / device slots (default: 4)
  --max-lora-rank R          largest adapter rank (default: the largest served at start, at least 16)
  --max-cpu-loras N          adapters registered in host memory at once (default: 2 × max-loras, or the number served)
  --max-cpu-lora-bytes N     bytes of adapter weights registered in host memory at once (default: no limit)
  --max-slot-memory N        bytes the adapter slots may take, every LoRA layer's max-loras × max-lora-rank
                             slots (default: 2147483648; the embedding's and LM head's grow with the vocabulary)
  --lora-load-workers N      threads that read and parse adapters while steps run; also how many
                             load at once (default: 1; 0: on the main thread)
  --max-num-seqs N           requests running at once (default: 16)
  --max-num-batched-tokens N tokens per engine step (default: 2048)
  --max-queue N              requests that may wait; past it 429 with Retry-After (default: 256)
  --enable-prefix-caching    reuse the KV cache of prompt blocks seen before (same adapter, or the
                             base model before an activated LoRA's invocation); usage reports cached_tokens
  --block-size N             tokens per prefix-cache block (default: 16)

Server
  --host HOST                address to bind (default: 127.0.0.1, this machine only)
  --port PORT                port (default: 8000; 0 picks a free one)
  --api-key KEY              require "Authorization: Bearer KEY" on /v1/* (also LORA_API_KEY)
  --allow-runtime-lora       enable POST /v1/load_lora_adapter and /v1/unload_lora_adapter
  --lora-root DIR            the only directory load_lora_adapter may read adapters from
  --max-body-bytes N         largest request body (default: 1048576)
  --drain-timeout SECONDS    on SIGTERM, time in-flight requests get to finish (default: 30)
  --help                     this text
`;

type Spec = { kind: 'string' | 'int' | 'bool'; key: keyof CliOptions | 'adapters'; min?: number; max?: number };

const FLAGS: Record<string, Spec> = {
  '--model': { kind: 'string', key: 'model' },
  '--preset': { kind: 'string', key: 'preset' },
  '--served-model-name': { kind: 'string', key: 'servedModelName' },
  '--adapters': { kind: 'string', key: 'adapters' },
  '--backend': { kind: 'string', key: 'backend' },
  '--max-loras': { kind: 'int', key: 'maxLoras', min: 1 },
  '--max-lora-rank': { kind: 'int', key: 'maxLoraRank', min: 1 },
  '--max-cpu-loras': { kind: 'int', key: 'maxCpuLoras', min: 1 },
  '--max-cpu-lora-bytes': { kind: 'int', key: 'maxCpuLoraBytes', min: 1 },
  '--max-slot-memory': { kind: 'int', key: 'maxSlotMemory', min: 1 },
  '--lora-load-workers': { kind: 'int', key: 'loraLoadWorkers', min: 0, max: 64 },
  '--max-num-seqs': { kind: 'int', key: 'maxNumSeqs', min: 1 },
  '--max-num-batched-tokens': { kind: 'int', key: 'maxNumBatchedTokens', min: 1 },
  '--max-queue': { kind: 'int', key: 'maxQueue', min: 1 },
  '--enable-prefix-caching': { kind: 'bool', key: 'enablePrefixCaching' },
  '--block-size': { kind: 'int', key: 'blockSize', min: 1 },
  '--host': { kind: 'string', key: 'host' },
  '--port': { kind: 'int', key: 'port', min: 0, max: 65535 },
  '--api-key': { kind: 'string', key: 'apiKey' },
  '--allow-runtime-lora': { kind: 'bool', key: 'allowRuntimeLora' },
  '--lora-root': { kind: 'string', key: 'loraRoot' },
  '--max-body-bytes': { kind: 'int', key: 'maxBodyBytes', min: 1 },
  '--drain-timeout': { kind: 'int', key: 'drainTimeout', min: 0 },
  '--help': { kind: 'bool', key: 'help' },
};

/** `name=path,name=path` (a bare path is named after its last segment, as the Hub id or directory name). */
function parseAdapters(value: string): AdapterArg[] {
  const out: AdapterArg[] = [];
  for (const item of value.split(',')) {
    if (item.trim() === '') continue;
    const eq = item.indexOf('=');
    const [name, path] =
      eq >= 0 ? [item.slice(0, eq).trim(), item.slice(eq + 1).trim()] : [item.trim().split('/').filter(Boolean).at(-1) ?? '', item.trim()];
    if (name === '' || path === '') throw new UsageError(`--adapters: expected NAME=DIR or NAME=ORG/REPO, got ${JSON.stringify(item)}`);
    if (out.some((a) => a.name === name)) throw new UsageError(`--adapters: the name ${JSON.stringify(name)} is given twice`);
    out.push({ name, path });
  }
  if (out.length === 0) throw new UsageError('--adapters: expected NAME=DIR[,NAME=DIR...]');
  return out;
}

/** Parses `lora-serve` flags (`--flag value` or `--flag=value`); throws UsageError naming the flag. */
export function parseArgs(argv: readonly string[], env: Readonly<Record<string, string | undefined>> = {}): CliOptions {
  const out: Record<string, unknown> = { help: false, host: '127.0.0.1', port: 8000, drainTimeout: 30 };
  if (env.LORA_API_KEY) out.apiKey = env.LORA_API_KEY;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const spec = Object.hasOwn(FLAGS, flag) ? FLAGS[flag] : undefined;
    if (spec === undefined) throw new UsageError(`unknown option ${JSON.stringify(arg)} (lora-serve --help lists them)`);
    if (spec.kind === 'bool') {
      if (eq > 0) throw new UsageError(`${flag} takes no value`);
      out[spec.key] = true;
      continue;
    }
    const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined || (eq < 0 && value.startsWith('--'))) throw new UsageError(`${flag} needs a value`);
    if (spec.kind === 'int') {
      const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
      const { min = 0, max = Number.MAX_SAFE_INTEGER } = spec;
      if (!Number.isSafeInteger(n) || n < min || n > max) {
        throw new UsageError(
          `${flag} must be an integer from ${min}${max === Number.MAX_SAFE_INTEGER ? ' up' : ` to ${max}`}, got ${JSON.stringify(value)}`,
        );
      }
      out[spec.key] = n;
    } else if (spec.key === 'adapters') out.adapters = parseAdapters(value);
    else {
      if (value === '') throw new UsageError(`${flag} needs a non-empty value`);
      out[spec.key] = value;
    }
  }
  if (out.preset !== undefined && out.model !== undefined)
    throw new UsageError('--preset is for the embedded model; it cannot be used with --model');
  if (out.loraRoot !== undefined && !out.allowRuntimeLora) throw new UsageError('--lora-root needs --allow-runtime-lora');
  return out as unknown as CliOptions;
}

/** Loopback addresses: the only ones where serving without an API key is not a risk to warn about. */
export const isLoopback = (host: string): boolean => host === 'localhost' || host === '::1' || /^127\./.test(host);
