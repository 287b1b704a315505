import '@tensorflow/tfjs-backend-cpu';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { LoRABackend } from './backend.js';
import { esmEntry, resolveFromProject } from './backend-import.js';
import { createLoRA } from './create.js';
import { LoRAError } from './errors.js';
import { createReferenceBackend } from './reference-backend.js';
import { listLoRABackends, registerLoRABackend, resolveBackendFactory, setBackendImporter, unregisterLoRABackend } from './registry.js';

const named = (name: string): LoRABackend => ({ ...createReferenceBackend(), name });

describe('backend registry', () => {
  afterEach(() => {
    unregisterLoRABackend('fake');
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

  it('imports @lora/backend-<name> when the name is not registered', async () => {
    const seen: string[] = [];
    const previous = setBackendImporter(async (specifier) => {
      seen.push(specifier);
      registerLoRABackend('fake', () => named('fake'));
    });
    try {
      const rt = await createLoRA({ backend: 'fake' });
      expect(rt.backend.name).toBe('fake');
      expect(seen).toEqual(['@lora/backend-fake']);
      rt.dispose();
    } finally {
      setBackendImporter(previous);
    }
  });

  it('E_BACKEND when the package is missing, does not register, or fails to load', async () => {
    const cases: Array<[(s: string) => Promise<unknown>, RegExp]> = [
      [
        async (s) => {
          throw Object.assign(new Error(`Cannot find package '${s}'`), { code: 'ERR_MODULE_NOT_FOUND' });
        },
        /not installed; run `npm install @lora\/backend-fake`/,
      ],
      [async () => ({}), /was imported but did not register a backend named "fake"/],
      [
        async () => {
          throw new Error('boom');
        },
        /loading @lora\/backend-fake for backend "fake" failed: boom/,
      ],
    ];
    for (const [importer, message] of cases) {
      const previous = setBackendImporter(importer);
      try {
        await expect(createLoRA({ backend: 'fake' })).rejects.toThrow(message);
        await expect(createLoRA({ backend: 'fake' })).rejects.toBeInstanceOf(LoRAError);
      } finally {
        setBackendImporter(previous);
      }
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
});
