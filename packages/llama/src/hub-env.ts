import { describeValue, LoRAError } from '@lora/core';
import { isNode, nodeBuiltins } from '@lora/core/backend';

/**
 * The settings huggingface_hub reads from the environment (huggingface_hub `constants.py`), so
 * that a machine set up for Python downloads behaves the same here. Browsers have no environment:
 * there the defaults apply.
 */
export interface HubEnvironment {
  /** `HF_HUB_CACHE` > `HUGGINGFACE_HUB_CACHE` > `$HF_HOME/hub` > `$XDG_CACHE_HOME/huggingface/hub` > `~/.cache/huggingface/hub`; undefined outside Node. */
  readonly cacheDir: string | undefined;
  /** `HF_HUB_OFFLINE` is 1/ON/YES/TRUE (any case). */
  readonly offline: boolean;
  /** `HF_ENDPOINT`, else https://huggingface.co. */
  readonly endpoint: string;
  /** `HF_TOKEN`. The token file huggingface-cli writes ($HF_HOME/token) is not read. */
  readonly token: string | undefined;
  /** `HF_HUB_DOWNLOAD_TIMEOUT` (seconds), else 10 s, in milliseconds. */
  readonly timeoutMs: number;
}

export const DEFAULT_ENDPOINT = 'https://huggingface.co';
const DEFAULT_TIMEOUT_MS = 10_000;

/** huggingface_hub `constants.py` `_is_true`. */
const isTrue = (value: string | undefined) => value !== undefined && ['1', 'ON', 'YES', 'TRUE'].includes(value.toUpperCase());

export async function hubEnvironment(): Promise<HubEnvironment> {
  if (!isNode())
    return { cacheDir: undefined, offline: false, endpoint: DEFAULT_ENDPOINT, token: undefined, timeoutMs: DEFAULT_TIMEOUT_MS };
  const env = process.env;
  const { path, os } = await nodeBuiltins('path', 'os');
  const expand = (p: string) => (p === '~' || p.startsWith('~/') ? path.join(os.homedir(), p.slice(1)) : p);
  const home = expand(env.HF_HOME || path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'huggingface'));
  const timeout = env.HF_HUB_DOWNLOAD_TIMEOUT;
  const seconds = timeout === undefined || timeout === '' ? undefined : Number(timeout);
  if (seconds !== undefined && !(seconds > 0 && Number.isFinite(seconds))) {
    throw new LoRAError('E_CONFIG', `HF_HUB_DOWNLOAD_TIMEOUT must be a number of seconds, got ${describeValue(timeout)}`);
  }
  return {
    cacheDir: expand(env.HF_HUB_CACHE || env.HUGGINGFACE_HUB_CACHE || path.join(home, 'hub')),
    offline: isTrue(env.HF_HUB_OFFLINE),
    endpoint: env.HF_ENDPOINT || DEFAULT_ENDPOINT,
    token: env.HF_TOKEN || undefined,
    timeoutMs: seconds === undefined ? DEFAULT_TIMEOUT_MS : seconds * 1000,
  };
}
