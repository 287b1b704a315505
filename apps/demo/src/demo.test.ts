import '@tensorflow/tfjs-backend-cpu';
import '@lora/backend-cpu';
// Registered here: under the root vitest run, a by-name import of a TS workspace package bypasses Vite.
import '@lora/backend-tpu-sim';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LoRAAdapter } from '@lora/core';
import { seededWeights } from '@lora/llama';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoAdapters } from './adapters.js';
import { checkAgainstMerged } from './check.js';
import { runDemo } from './demo.js';
import { parseOptions } from './options.js';
import { demoModelConfig, PRESETS } from './presets.js';

tf.env().set('IS_TEST', true);

let cache: string;
const quiet = { log: () => {}, progress: false };
const opts = (argv: string[], env: Record<string, string> = {}) => parseOptions(['--preset', 'tiny', '--cache', cache, ...argv], env);

beforeAll(async () => {
  cache = await mkdtemp(join(tmpdir(), 'lora-demo-'));
});
afterAll(async () => {
  await rm(cache, { recursive: true, force: true });
});

describe('demo: a tiny Llama serving a mixed-adapter queue', () => {
  it('writes PEFT adapters on first run, serves with eviction, and every request matches its merged-weight run', async () => {
    const before = tf.memory().numTensors;
    const report = await runDemo(opts(['--requests', '6', '--max-new-tokens', '4']), quiet);
    expect(report.adaptersCreated).toBe(true);
    expect(report.adapters.map((a) => a.rank).sort((a, b) => a - b)).toEqual([8, 16, 16, 32]);
    expect(report.checks.map((c) => c.pass)).toEqual([true, true, true, true, true, true]);
    expect(report.changedByLoRA).toBeGreaterThan(0);
    expect(report.lora.activations).toBeGreaterThan(0); // 4 adapters, 3 slots: something was re-activated
    expect(report.lora.decodeTokens + report.lora.prefillTokens).toBeGreaterThan(0);
    expect(tf.memory().numTensors).toBe(before);
    const again = await runDemo(opts(['--requests', '2', '--max-new-tokens', '2']), quiet);
    expect(again.adaptersCreated).toBe(false);
  }, 60_000);

  it('serves the same queue on the tpu-sim backend (bf16 operands), every request matching its merged-weight run', async () => {
    const before = tf.memory().numTensors;
    const report = await runDemo(opts(['--backend', 'tpu-sim', '--requests', '6', '--max-new-tokens', '4']), quiet);
    expect(report.backend).toBe('tpu-sim');
    expect(report.checks.map((c) => c.pass)).toEqual([true, true, true, true, true, true]);
    expect(report.changedByLoRA).toBeGreaterThan(0);
    expect(tf.memory().numTensors).toBe(before);
  }, 60_000);

  it('the merged-weight check fails when the served adapter is not the merged one', async () => {
    const c = PRESETS.tiny!;
    const weights = seededWeights(c);
    const { adapters } = await demoAdapters(c, join(cache, 'tiny'));
    const report = await runDemo(opts(['--requests', '3', '--max-new-tokens', '3']), quiet);
    // Merge a different adapter than the one each request used.
    const shifted = new Map<string, LoRAAdapter>(adapters.map((a, i) => [a.id, adapters[(i + 1) % adapters.length] as LoRAAdapter]));
    const checks = await checkAgainstMerged(
      { backend: 'cpu' },
      c,
      weights,
      shifted,
      report.checks.map((k) => k.generation),
    );
    expect(checks.filter((k) => k.generation.request.adapter !== null).some((k) => !k.pass)).toBe(true);
  }, 60_000);

  it.each([
    [['--preset', 'huge'], /unknown preset "huge"/],
    [['--requests', '0'], /--requests must be a positive integer, got "0"/],
    [['--bogus'], /Unknown option '--bogus'/],
  ])('bad flags %j → E_CONFIG', (argv, message) => {
    expect(() => opts(argv)).toThrow(message);
  });

  it.each([
    ['not JSON', '{"backend": "cpu",', 'E_CONFIG', /is not valid JSON/],
    ['an unknown key', '{"backend": "cpu", "maxLoraz": 3}', 'E_CONFIG', /unknown LoRAConfig key\(s\) "maxLoraz"/],
    ['a negative maxLoras', '{"backend": "cpu", "maxLoras": -2}', 'E_CONFIG', /maxLoras must be an integer from 1 to 1024, got -2/],
    ['an unknown backend', '{"backend": "quantum"}', 'E_BACKEND', /npm install @lora\/backend-quantum/],
  ])('a config file with %s → %s', async (_, text, code, message) => {
    const file = join(cache, `config-${code}-${text.length}.json`);
    await writeFile(file, text);
    await expect((async () => runDemo(opts(['--config', file]), quiet))()).rejects.toSatisfy(
      (e: unknown) => (e as { code?: string }).code === code && message.test((e as Error).message),
    );
  });

  it('user adapters: a missing directory and one that does not fit the model are rejected', async () => {
    await expect(runDemo(opts(['--adapters', join(cache, 'nowhere')]), quiet)).rejects.toThrow(
      /E_NOT_FOUND.*adapter_config\.json does not exist/,
    );
    const other = join(cache, 'other-model');
    await demoAdapters(demoModelConfig({ ...PRESETS.tiny!, hidden: 32, name: 'other' }), other);
    await expect(runDemo(opts(['--adapters', join(other, 'sql-r8')]), quiet)).rejects.toThrow(
      /E_SHAPE.*32 → 32 for model\.layers\.0\.self_attn\.q_proj/,
    );
  }, 60_000);

  it('the CLI prints one line and exits 2 for user errors, never a stack trace', () => {
    const run = (args: string[], env: Record<string, string> = {}) =>
      spawnSync(
        process.execPath,
        ['--import', 'tsx', '--conditions=@lora/source', 'src/main.ts', '--preset', 'tiny', '--cache', cache, ...args],
        {
          cwd: join(import.meta.dirname, '..'),
          env: { ...process.env, ...env },
          encoding: 'utf8',
        },
      );
    for (const [args, env, message] of [
      [[], { LORA_BACKEND: 'quantum' }, /^\[E_BACKEND\] backend "quantum" is not registered/],
      [['--one-batch', '--requests', '8'], {}, /^\[E_CAPACITY\] the batch needs 4 distinct adapters/],
    ] as const) {
      const r = run([...args], env);
      expect(r.status).toBe(2);
      const lines = r.stderr.split('\n').filter((l) => l.startsWith('['));
      expect(lines.at(-1)).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  }, 60_000);
});
