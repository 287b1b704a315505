import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isLoRAError, type LoRAAdapter, writePeftAdapterDir } from '@lora/core';
import { adapterFiles, buildCheckpoint } from '@lora/llama';
import { DEMO_PRESETS } from '@lora/llama/demo';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAdapterDir } from './adapter-dir.js';
import { type AdapterLoader, createAdapterLoader } from './adapter-loader.js';

const tmp = mkdtempSync(join(tmpdir(), 'lora-loader-'));
const root = join(tmp, 'root');
const { config } = buildCheckpoint(DEMO_PRESETS.tiny);
const targets = ['q_proj', 'v_proj', 'down_proj'];
let loader: AdapterLoader;
const logged: string[] = [];

beforeAll(async () => {
  mkdirSync(root);
  for (let i = 0; i < 6; i++)
    await writePeftAdapterDir(join(root, `a${i}`), adapterFiles(config, { id: `a${i}`, rank: 4 + i, alpha: 8, targets }, 90 + i));
  await writePeftAdapterDir(join(root, 'dora'), adapterFiles(config, { id: 'dora', rank: 4, alpha: 8, targets, dora: true }, 97));
  await writePeftAdapterDir(
    join(root, 'alora'),
    adapterFiles(config, { id: 'alora', rank: 4, alpha: 8, targets, invocationTokens: [5, 6] }, 98),
  );
  mkdirSync(join(root, 'broken'));
  writeFileSync(join(root, 'broken', 'adapter_config.json'), '{"r": 4, "lora_alpha": 8, "target_modules": ["q_proj"]}');
  writeFileSync(join(root, 'broken', 'adapter_model.safetensors'), new Uint8Array(16));
  mkdirSync(join(root, 'no-weights'));
  writeFileSync(join(root, 'no-weights', 'adapter_config.json'), '{}');
  await writePeftAdapterDir(join(tmp, 'outside'), adapterFiles(config, { id: 'o', rank: 4, alpha: 8, targets }, 99));
  mkdirSync(join(root, 'sneaky'));
  writeFileSync(join(root, 'sneaky', 'adapter_config.json'), '{}');
  symlinkSync(join(tmp, 'outside', 'adapter_model.safetensors'), join(root, 'sneaky', 'adapter_model.safetensors'));
  loader = createAdapterLoader({ workers: 2, log: (l) => logged.push(l) });
}, 60_000);

afterAll(async () => {
  await loader?.close();
  rmSync(tmp, { recursive: true, force: true });
});

const job = (name: string, id = name) => ({ id, dir: join(root, name), root, maxBytes: 2 ** 30, source: name });

/** Everything an adapter holds, the weights as bits. */
function snapshot(a: LoRAAdapter) {
  return {
    ...a,
    modules: [...a.modules.values()].map((m) => ({
      ...m,
      a: [...new Uint32Array(m.a.buffer, m.a.byteOffset, m.a.length)],
      b: [...new Uint32Array(m.b.buffer, m.b.byteOffset, m.b.length)],
      magnitude: m.magnitude && [...m.magnitude],
    })),
  };
}

async function adapterOf(p: ReturnType<AdapterLoader['load']>): Promise<LoRAAdapter> {
  const r = await p;
  if (!('adapter' in r)) throw new Error(`expected an adapter, got ${JSON.stringify(r)}`);
  return r.adapter;
}

describe('the adapter loader (worker threads)', () => {
  it('runs its threads, and gives exactly what reading on the main thread gives (plain, DoRA, activated)', async () => {
    expect(loader.workers).toBe(2);
    for (const name of ['a0', 'dora', 'alora']) {
      const threaded = await adapterOf(loader.load(job(name, `${name}#1`)));
      const main = await adapterOf(readAdapterDir(job(name, `${name}#1`)));
      expect(snapshot(threaded)).toEqual(snapshot(main));
      expect(Object.isFrozen(threaded)).toBe(true);
    }
    expect((await adapterOf(loader.load(job('alora')))).invocationTokens).toEqual([5, 6]);
  });

  it('runs many loads through two threads, at most two at a time and the rest queued, each result its own adapter', async () => {
    await loader.ready();
    const names = Array.from({ length: 18 }, (_, i) => `a${i % 6}`);
    const pending = names.map((n, i) => adapterOf(loader.load(job(n, `${n}-${i}`))));
    expect([loader.running, loader.queued]).toEqual([2, 16]);
    const got = await Promise.all(pending);
    expect([loader.running, loader.queued]).toEqual([0, 0]);
    expect(got.map((a) => [a.id, a.rank])).toEqual(names.map((n, i) => [`${n}-${i}`, 4 + Number(n.slice(1))]));
    // Both threads still up: nothing fell back to the main thread.
    expect([loader.workers, logged]).toEqual([2, []]);
  });

  it('reports bad files as LoRAErrors with their code and where they came from; missing and escaping files as results', async () => {
    const err = await loader.load(job('broken')).catch((e: unknown) => e);
    expect(isLoRAError(err, 'E_FORMAT')).toBe(true);
    expect((err as Error).message).toContain('broken');
    expect(await loader.load(job('no-weights'))).toEqual({ missing: 'adapter_model.safetensors' });
    expect(await loader.load(job('nowhere'))).toEqual({ missing: 'adapter_config.json' });
    expect(await loader.load(job('sneaky'))).toEqual({ outside: true });
    // Still serving after the failures.
    expect((await adapterOf(loader.load(job('a1')))).rank).toBe(5);
  });

  it('with 0 workers reads on the main thread; after close, loads fail with E_DISPOSED', async () => {
    const inline = createAdapterLoader({ workers: 0 });
    expect(inline.workers).toBe(0);
    expect((await adapterOf(inline.load(job('a2')))).rank).toBe(6);
    await inline.close();
    await expect(inline.load(job('a2'))).rejects.toMatchObject({ code: 'E_DISPOSED' });
    expect(() => createAdapterLoader({ workers: -1 })).toThrow(/--lora-load-workers/);
  });
});
