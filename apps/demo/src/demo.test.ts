import '@tensorflow/tfjs-backend-cpu';
import '@lora/backend-cpu';
// Registered here: under the root vitest run, a by-name import of a TS workspace package bypasses Vite.
import '@lora/backend-tpu-sim';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LoRAAdapter } from '@lora/core';
import { buildCheckpoint, CHECKPOINT_PRESETS, writeCheckpoint } from '@lora/llama';
import { checkAgainstMerged, DEMO_PRESETS, demoAdapters } from '@lora/llama/demo';
import { makeTestTokenizer, startHubServer, testTokenizerFiles } from '@lora/llama/testing';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { presetConfig } from './cache.js';
import { parseOptions } from './options.js';
import { runPrompts } from './prompts.js';
import { runSession } from './session.js';

tf.env().set('IS_TEST', true);

let cache: string;
const quiet = { log: () => {}, progress: false };
const opts = (argv: string[], env: Record<string, string> = {}) => parseOptions(['--preset', 'tiny', '--cache', cache, ...argv], env);

/**
 * The CLI as a user runs it (from apps/demo, as `npm run demo` does), with the cache in the temp
 * folder. Asynchronous: a test's local Hub server must keep answering while the CLI runs.
 */
function cli(args: string[], env: Record<string, string> = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=@lora/source', 'src/main.ts', '--cache', cache, ...args], {
      cwd: join(import.meta.dirname, '..'),
      env: { ...process.env, INIT_CWD: cache, ...env },
      timeout: 120_000,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

beforeAll(async () => {
  cache = await mkdtemp(join(tmpdir(), 'lora-demo-'));
});
afterAll(async () => {
  await rm(cache, { recursive: true, force: true });
});

describe('demo session: a tiny Llama serving a mixed-adapter queue', () => {
  it('writes the model and PEFT adapters on first run, serves with eviction, and every request matches its merged-weight run', async () => {
    const before = tf.memory().numTensors;
    const report = await runSession(opts(['--requests', '6', '--max-tokens', '4']), quiet);
    expect(report.adaptersCreated).toBe(true);
    expect(report.adapters.map((a) => a.rank).sort((a, b) => a - b)).toEqual([8, 16, 16, 32]);
    expect(report.checks.map((c) => c.pass)).toEqual([true, true, true, true, true, true]);
    expect(report.changedByLoRA).toBeGreaterThan(0);
    expect(report.lora.activations).toBeGreaterThan(0); // 4 adapters, 3 slots: something was re-activated
    expect(report.results.every((r) => r.tokenIds.length === 4)).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
    const again = await runSession(opts(['--requests', '2', '--max-tokens', '2']), quiet);
    expect(again.adaptersCreated).toBe(false);
  }, 60_000);

  it('serves the same queue on the tpu-sim backend (bf16 operands), every request matching its merged-weight run', async () => {
    const report = await runSession(opts(['--backend', 'tpu-sim', '--requests', '6', '--max-tokens', '4']), quiet);
    expect(report.backend).toBe('tpu-sim');
    expect(report.checks.map((c) => c.pass)).toEqual([true, true, true, true, true, true]);
    expect(report.changedByLoRA).toBeGreaterThan(0);
  }, 60_000);

  it('the merged-weight check fails when the served adapter is not the merged one', async () => {
    const report = await runSession(opts(['--requests', '3', '--max-tokens', '3']), quiet);
    const config = presetConfig(DEMO_PRESETS.tiny);
    const adapters = demoAdapters(config);
    // Merge a different adapter than the one each request used.
    const shifted = new Map<string, LoRAAdapter>(adapters.map((a, i) => [a.id, adapters[(i + 1) % adapters.length] as LoRAAdapter]));
    const checks = await checkAgainstMerged({
      lora: { backend: 'cpu' },
      config,
      weights: buildCheckpoint(DEMO_PRESETS.tiny).weights,
      adapters: shifted,
      results: report.results,
    });
    expect(checks.filter((k) => k.result.adapter !== null).some((k) => !k.pass)).toBe(true);
  }, 60_000);

  it.each([
    [['--preset', 'huge'], /unknown preset "huge"; expected one of tiny, default, small/],
    [['--requests', '0'], /--requests must be a positive integer, got "0"/],
    [['--prompt-ids', '1,x'], /--prompt-ids must be comma-separated token ids/],
    [['--temperature=-1'], /--temperature must be a number ≥ 0/],
    [['--bogus'], /Unknown option '--bogus'/],
  ])('bad flags %j → E_CONFIG', (argv, message) => {
    expect(() => opts(argv)).toThrow(message);
  });

  it.each([
    ['not JSON', '{"backend": "cpu",', 'E_CONFIG', /is not valid JSON/],
    ['an unknown key', '{"backend": "cpu", "maxLoraz": 3}', 'E_CONFIG', /unknown LoRAConfig key\(s\) "maxLoraz"/],
    ['a negative maxLoras', '{"backend": "cpu", "maxLoras": -2}', 'E_CONFIG', /maxLoras must be an integer from 1 to 1024, got -2/],
    ['an unknown backend', '{"backend": "quantum"}', 'E_BACKEND', /unknown backend "quantum"; expected one of .*"cpu"/],
  ])('a config file with %s → %s', async (_, text, code, message) => {
    const file = join(cache, `config-${code}-${text.length}.json`);
    await writeFile(file, text);
    await expect((async () => runSession(opts(['--config', file]), quiet))()).rejects.toSatisfy(
      (e: unknown) => (e as { code?: string }).code === code && message.test((e as Error).message),
    );
  });

  it('user adapters: a missing directory and one that does not fit the model are rejected', async () => {
    await expect(runSession(opts(['--adapters', join(cache, 'nowhere')]), quiet)).rejects.toThrow(/E_NOT_FOUND.*nowhere/);
    const other = join(cache, 'other-model');
    const run = await cli(['--save', other, '--preset', 'default']);
    expect(run.status, run.stderr).toBe(0);
    await expect(runSession(opts(['--adapters', `sql=${join(other, 'sql-r8')}`]), quiet)).rejects.toThrow(
      /E_SHAPE.*512 → 512 for model\.layers\.0\.self_attn\.q_proj; the model's linear layer there is 64 → 64/,
    );
  }, 120_000);
});

describe('demo with prompts: real checkpoints, adapters by name, --json', () => {
  it('--save writes a checkpoint and adapters that --model / --adapters serve, with --json on stdout alone', async () => {
    const dir = join(cache, 'saved');
    const save = await cli(['--preset', 'tiny', '--save', dir]);
    expect(save.status, save.stderr).toBe(0);
    expect(save.stderr).toMatch(/sql-r8=saved\/sql-r8/);
    const run = await cli([
      '--model',
      'saved/model',
      '--adapters',
      'sql=saved/sql-r8,poet=saved/poet-r16',
      '--prompt-ids',
      '1,2,3',
      '--prompt-ids',
      '7',
      '--max-tokens',
      '5',
      '--json',
    ]);
    expect(run.status, run.stderr).toBe(0);
    const doc = JSON.parse(run.stdout);
    expect(Object.keys(doc)).toEqual(['requests']);
    expect(doc.requests.map((r: { adapter: string | null }) => r.adapter)).toEqual([null, 'sql', 'poet', null, 'sql', 'poet']);
    for (const r of doc.requests) {
      expect(Object.keys(r)).toEqual(['adapter', 'prompt_ids', 'generated_ids', 'text']);
      expect(r.generated_ids).toHaveLength(5);
      expect(r.text).toBe(''); // no tokenizer in a seeded checkpoint
    }
    expect(doc.requests[0].prompt_ids).toEqual([1, 2, 3]);
    // In process: the same request, the same tokens (greedy and batch-invariant).
    const again = await runPrompts(
      opts(['--model', join(dir, 'model'), '--adapters', `sql=${join(dir, 'sql-r8')}`, '--prompt-ids', '1,2,3', '--max-tokens', '5']),
      quiet,
    );
    expect(again.requests.map((r) => r.generatedIds)).toEqual(
      doc.requests.slice(0, 2).map((r: { generated_ids: number[] }) => r.generated_ids),
    );
  }, 120_000);

  it('text prompts and --chat through the checkpoint tokenizer; a model without one says to use --prompt-ids', async () => {
    const tokenizer = makeTestTokenizer();
    const dir = join(cache, 'with-tokenizer');
    const { files } = buildCheckpoint({ ...CHECKPOINT_PRESETS['llama-untied'], vocabSize: tokenizer.vocabSize });
    await writeCheckpoint(dir, {
      ...files,
      ...Object.fromEntries(Object.entries(testTokenizerFiles()).map(([k, v]) => [k, new TextEncoder().encode(v)])),
    });
    const run = await runPrompts(
      opts(['--model', dir, '--prompt', 'Hello world', '--max-tokens', '6', '--temperature', '0.8', '--seed', '3']),
      quiet,
    );
    expect(run.tokenizer).toBe(true);
    expect(run.requests).toHaveLength(1);
    expect(run.requests[0]?.promptIds).toEqual(tokenizer.encode('Hello world', { addSpecialTokens: true }));
    expect(run.requests[0]?.text).toBe(
      tokenizer.decode(run.requests[0]?.generatedIds ?? [], { skipSpecialTokens: true, cleanUpTokenizationSpaces: false }),
    );
    const chat = await runPrompts(opts(['--model', dir, '--prompt', 'Hello', '--chat', '--max-tokens', '2']), quiet);
    expect(tokenizer.decode(chat.requests[0]?.promptIds ?? [])).toMatch(
      /<\|im_start\|>user\nHello<\|im_end\|>\n<\|im_start\|>assistant\n$/,
    );
    await expect(runPrompts(opts(['--prompt', 'Hello']), quiet)).rejects.toThrow(
      /E_CONFIG.*the embedded model has none\); use --prompt-ids/,
    );
  }, 60_000);

  it('--model ORG/NAME and --adapters NAME=ORG/NAME download from the Hub (a local server speaking its protocol) into the HF cache', async () => {
    const { config, files } = buildCheckpoint(DEMO_PRESETS.tiny);
    const adapter = (await import('@lora/llama/demo')).demoAdapterFiles(config).get('sql-r8')!;
    const hub = await startHubServer({
      repos: {
        'acme/tiny-llama': files,
        'acme/sql-lora': { 'adapter_config.json': adapter.config, 'adapter_model.safetensors': adapter.safetensors },
      },
    });
    try {
      const env = { HF_ENDPOINT: hub.url, HF_HUB_CACHE: join(cache, 'hf'), HF_HUB_OFFLINE: '0' };
      const run = await cli(
        ['--model', 'acme/tiny-llama', '--adapters', 'sql=acme/sql-lora', '--prompt-ids', '4,5', '--max-tokens', '3', '--json'],
        env,
      );
      expect(run.status, run.stderr).toBe(0);
      expect(JSON.parse(run.stdout).requests.map((r: { adapter: string }) => r.adapter)).toEqual([null, 'sql']);
      const offline = await cli(['--model', 'acme/tiny-llama', '--prompt-ids', '4,5', '--max-tokens', '3', '--json'], {
        ...env,
        HF_HUB_OFFLINE: '1',
      });
      expect(offline.status, offline.stderr).toBe(0);
    } finally {
      await hub.close();
    }
  }, 120_000);

  it('the CLI prints one line and exits 2 for user errors, never a stack trace', async () => {
    await mkdir(join(cache, 'empty-dir'), { recursive: true });
    for (const [args, env, message] of [
      [['--preset', 'tiny'], { LORA_BACKEND: 'quantum' }, /^\[E_BACKEND\] unknown backend "quantum"/],
      [['--preset', 'tiny', '--prompt', 'hi'], {}, /^\[E_CONFIG\] --prompt needs the model's tokenizer\.json/],
      [['--model', 'empty-dir', '--prompt-ids', '1'], {}, /^\[E_NOT_FOUND\] .*empty-dir.*config\.json/],
    ] as const) {
      const r = await cli([...args], env);
      expect(r.status, r.stderr).toBe(2);
      const lines = r.stderr.split('\n').filter((l) => l.startsWith('['));
      expect(lines.at(-1)).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  }, 120_000);
});
