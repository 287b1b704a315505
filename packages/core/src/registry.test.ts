import '@tensorflow/tfjs-backend-cpu';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { LoRABackend } from './backend.js';
import { customConditions, esmEntry, resolveFromProject } from './backend-import.js';
import { checkBackendOptions } from './config.js';
import { createLoRA } from './create.js';
import { LoRAError } from './errors.js';
import { createReferenceBackend } from './reference-backend.js';
import { listLoRABackends, registerLoRABackend, resolveBackendFactory, setBackendImporter, unregisterLoRABackend } from './registry.js';

const named = (name: string): LoRABackend => ({ ...createReferenceBackend(), name });

describe('backend registry', () => {
  afterEach(() => {
    unregisterLoRABackend('fake');
    // A first-party name no test file here imports the package of (the importer is faked).
    unregisterLoRABackend('tpu-sim');
  });

  it('has the float64 reference backend built in', async () => {
    expect(listLoRABackends()).toContain('reference');
    const rt = await createLoRA({ backend: 'reference' });
    expect(rt.backend.name).toBe('reference');
    rt.dispose();
  });

  it('keeps the higher-priority factory for a name', async () => {
    registerLoRABackend('fake', () => named('tuned'), { priority: 10 });
    registerLoRABackend('fake', () => named('default'));
    expect((await (await resolveBackendFactory('fake'))({})).name).toBe('tuned');
    registerLoRABackend('fake', () => named('newer'), { priority: 10 });
    expect((await (await resolveBackendFactory('fake'))({})).name).toBe('newer');
  });

  it('imports the package of a first-party name that is not registered yet', async () => {
    const seen: string[] = [];
    const previous = setBackendImporter(async (specifier) => {
      seen.push(specifier);
      registerLoRABackend('tpu-sim', () => named('tpu-sim'));
    });
    try {
      const rt = await createLoRA({ backend: 'tpu-sim' });
      expect(rt.backend.name).toBe('tpu-sim');
      expect(seen).toEqual(['@lora/backend-tpu-sim']);
      rt.dispose();
    } finally {
      setBackendImporter(previous);
    }
  });

  it('never imports a package for a name that is neither registered nor first-party, and lists the known ones', async () => {
    const seen: string[] = [];
    const previous = setBackendImporter(async (specifier) => {
      seen.push(specifier);
    });
    try {
      for (const name of ['cpux', 'fake', '../../evil', '']) {
        const err = await createLoRA({ backend: name }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(LoRAError);
        expect((err as LoRAError).code).toBe('E_BACKEND');
        expect((err as LoRAError).message).toMatch(/unknown backend .*expected one of .*"reference".*"cpu", "webgl", "webgpu", "tpu-sim"/);
        expect((err as LoRAError).message).not.toMatch(/npm install/);
      }
      expect(seen).toEqual([]);
    } finally {
      setBackendImporter(previous);
    }
  });

  it('E_BACKEND when the package is missing, does not register, fails to load, or is not built', async () => {
    const cases: Array<[(s: string) => Promise<unknown>, RegExp]> = [
      [
        async (s) => {
          throw Object.assign(new Error(`Cannot find package '${s}' imported from /app/index.js`), { code: 'ERR_MODULE_NOT_FOUND' });
        },
        /needs @lora\/backend-tpu-sim, which is not installed; run `npm install @lora\/backend-tpu-sim`/,
      ],
      [async () => ({}), /was imported but did not register a backend named "tpu-sim"/],
      [
        async () => {
          throw new Error('boom');
        },
        /loading @lora\/backend-tpu-sim for backend "tpu-sim" failed: boom$/,
      ],
      [
        // An installed workspace package whose dist was never built: not "not installed".
        async () => {
          throw Object.assign(new Error(`Cannot find module '/repo/packages/backend-tpu-sim/dist/index.js' imported from /repo/x.js`), {
            code: 'ERR_MODULE_NOT_FOUND',
          });
        },
        /loading @lora\/backend-tpu-sim for backend "tpu-sim" failed: Cannot find module .*dist\/index\.js.*installed but a file it loads is missing.*npm run build/,
      ],
    ];
    for (const [importer, message] of cases) {
      const previous = setBackendImporter(importer);
      try {
        await expect(createLoRA({ backend: 'tpu-sim' })).rejects.toThrow(message);
        await expect(createLoRA({ backend: 'tpu-sim' })).rejects.toBeInstanceOf(LoRAError);
      } finally {
        setBackendImporter(previous);
      }
    }
  });

  it('takes the first backend of a list that starts, and gives each its own options', async () => {
    const tried: string[] = [];
    const noDevice = {
      ...named('gpu-ish'),
      init: () => Promise.reject(new LoRAError('E_BACKEND', 'no adapter')),
      dispose: () => tried.push('disposed'),
    };
    registerLoRABackend('fake', (options) => {
      tried.push(`fake ${JSON.stringify(options)}`);
      return named('fake');
    });
    const previous = setBackendImporter(async (s) => {
      throw Object.assign(new Error(`Cannot find package '${s}'`), { code: 'ERR_MODULE_NOT_FOUND' });
    });
    try {
      const rt = await createLoRA({
        backend: [noDevice, 'webgpu', 'fake', 'reference'],
        backendOptions: { fake: { level: 2 }, webgpu: {} },
      });
      expect(rt.backend.name).toBe('fake');
      expect(rt.config.backend).toBe('fake');
      expect(rt.config.backendOptions).toEqual({ level: 2 });
      // The failed candidate was disposed; the missing package was skipped; 'reference' was never built.
      expect(tried).toEqual(['disposed', 'fake {"level":2}']);
      rt.dispose();
    } finally {
      setBackendImporter(previous);
    }
  });

  it('says why each listed backend could not start when none can, and never falls through a config error', async () => {
    const previous = setBackendImporter(async (s) => {
      throw Object.assign(new Error(`Cannot find package '${s}'`), { code: 'ERR_MODULE_NOT_FOUND' });
    });
    try {
      const err = (await createLoRA({ backend: ['webgpu', 'webgl'] }).catch((e: unknown) => e)) as LoRAError;
      expect(err.code).toBe('E_BACKEND');
      expect(err.message).toMatch(/none of the backends listed could start here — "webgpu": .*not installed.*; "webgl": .*not installed/);
      // A typo in the options is the caller's to fix, not a reason to try the next backend.
      registerLoRABackend('fake', (options) => {
        checkBackendOptions('fake', options, ['level']);
        return named('fake');
      });
      await expect(createLoRA({ backend: ['fake', 'reference'], backendOptions: { fake: { levle: 1 } } })).rejects.toThrow(
        /unknown backendOptions key\(s\) levle for backend "fake"/,
      );
    } finally {
      setBackendImporter(previous);
    }
  });

  it('E_CONFIG for malformed lists and per-backend options', async () => {
    const cases: Array<[unknown, unknown, RegExp]> = [
      [[], undefined, /backend lists 1 to 16 backends/],
      [['cpu', 3], undefined, /backend\[1\] must be a backend name or a LoRABackend object, got 3/],
      [['reference'], { engine: 'js' }, /backendOptions holds one object per listed name \("reference"\); got key "engine"/],
      [['reference'], { reference: 'fast' }, /backendOptions.reference must be an object/],
      [7, undefined, /backend must be a backend name such as "cpu", a LoRABackend object, or a list of them, got 7/],
    ];
    for (const [backend, backendOptions, message] of cases) {
      const err = (await createLoRA({ backend, backendOptions } as never).catch((e: unknown) => e)) as LoRAError;
      expect(err.code).toBe('E_CONFIG');
      expect(err.message).toMatch(message);
    }
  });

  it('E_BACKEND for objects that are not backends and for failing init()', async () => {
    await expect(createLoRA({ backend: { name: 'x' } as never })).rejects.toThrow(
      /not a LoRABackend: missing init, shrink, expand, dispose, tfBackend/,
    );
    registerLoRABackend('fake', () => ({ nope: true }) as never);
    await expect(createLoRA({ backend: 'fake' })).rejects.toThrow(/the factory of "fake" is not a LoRABackend/);
    const broken = { ...named('broken'), init: () => Promise.reject(new Error('no adapter')) };
    await expect(createLoRA({ backend: broken })).rejects.toThrow(/backend "broken" failed to initialise: no adapter/);
  });
});

describe('finding a backend package from the project (pnpm-strict layouts)', () => {
  it('reads the ESM entry of an exports map', () => {
    expect(esmEntry({ exports: { '.': { import: { types: './a.d.ts', default: './dist/index.js' }, require: './x.cjs' } } })).toBe(
      './dist/index.js',
    );
    expect(esmEntry({ exports: './main.js' })).toBe('./main.js');
    expect(esmEntry({ module: './m.js', main: './c.cjs' })).toBe('./m.js');
    expect(esmEntry({})).toBeUndefined();
    // A development run (--conditions=@lora/source) loads the package's sources, as its static imports do.
    const dev = { exports: { '.': { '@lora/source': './src/index.ts', import: './dist/index.js' } } };
    expect(esmEntry(dev, ['@lora/source'])).toBe('./src/index.ts');
    expect(esmEntry(dev, ['other'])).toBe('./dist/index.js');
    expect(customConditions(['--conditions=@lora/source', '-C', 'x', '--import', 'tsx'], '--conditions y -C=z')).toEqual([
      '@lora/source',
      'x',
      'y',
      'z',
    ]);
    expect(customConditions([], '')).toEqual([]);
  });

  it('resolves a package installed in the working directory, not beside core', async () => {
    const project = await mkdtemp(join(tmpdir(), 'lora-project-'));
    try {
      const pkg = join(project, 'node_modules', '@lora', 'backend-fake');
      await mkdir(join(pkg, 'dist'), { recursive: true });
      await writeFile(
        join(pkg, 'package.json'),
        JSON.stringify({ name: '@lora/backend-fake', exports: { '.': { import: './dist/index.js' } } }),
      );
      await writeFile(join(pkg, 'dist', 'index.js'), 'globalThis.__loraFakeLoaded = true;\n');
      const url = await resolveFromProject('@lora/backend-fake', project);
      expect(url).toMatch(/node_modules\/@lora\/backend-fake\/dist\/index\.js$/);
      await import(/* @vite-ignore */ url!);
      expect((globalThis as Record<string, unknown>).__loraFakeLoaded).toBe(true);
      expect(await resolveFromProject('@lora/backend-absent', project)).toBeUndefined();
    } finally {
      await rm(project, { recursive: true, force: true });
    }
  });

  it('E_CONFIG for a maxNumTokens above what the started backend can run in one batch; the backend is disposed', async () => {
    let disposed = 0;
    const limited = (limit: number | undefined): LoRABackend => ({
      ...named('limited'),
      maxBatchTokens: () => limit,
      dispose: () => {
        disposed++;
      },
    });
    const err = await createLoRA({ backend: limited(4096), maxNumTokens: 8192 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LoRAError);
    expect((err as LoRAError).code).toBe('E_CONFIG');
    expect((err as LoRAError).message).toMatch(/maxNumTokens = 8192 .*backend "limited".*at most 4096 tokens/);
    expect(disposed).toBe(1);
    for (const ok of [limited(8192), limited(undefined)]) (await createLoRA({ backend: ok, maxNumTokens: 8192 })).dispose();
    expect(disposed).toBe(3);
  });
});
