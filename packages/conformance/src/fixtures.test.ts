import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPeftAdapter, loadPeftAdapterFromDir, parseSafetensors } from '@lora/core';
import { adapterFiles, moduleSpecs } from '@lora/llama';
import { describe, expect, it } from 'vitest';
import { FIXTURE_ADAPTERS, TINY_LLAMA, writeFixtureAdapters } from './fixtures/tiny-llama.js';
import { Random } from './random.js';

describe('PEFT fixture generator', () => {
  it('writes adapter directories (BF16 and F32) that load back to the adapters it generated', async () => {
    const root = await mkdtemp(join(tmpdir(), 'lora-fixtures-'));
    try {
      const dirs = await writeFixtureAdapters(root, new Random(1));
      const again = new Random(1);
      for (const spec of FIXTURE_ADAPTERS) {
        const { id } = spec;
        const fromDir = await loadPeftAdapterFromDir(dirs.get(id)!);
        const inMemory = loadPeftAdapter({ id, ...adapterFiles(TINY_LLAMA, spec, again.seed()) });
        expect(fromDir.id).toBe(id);
        expect([...fromDir.modules.keys()].sort()).toEqual([...inMemory.modules.keys()].sort());
        for (const [name, m] of inMemory.modules) {
          const d = fromDir.modules.get(name)!;
          expect({ rank: d.rank, scale: d.scale, kind: d.kind }).toEqual({ rank: m.rank, scale: m.scale, kind: m.kind });
          expect(Array.from(d.a)).toEqual(Array.from(m.a));
          expect(Array.from(d.b)).toEqual(Array.from(m.b));
        }
        const st = parseSafetensors(new Uint8Array(await readFile(join(dirs.get(id)!, 'adapter_model.safetensors'))));
        expect(new Set(Object.values(st.tensors).map((t) => t.dtype))).toEqual(new Set([spec.dtype ?? 'F32']));
        const config = JSON.parse(await readFile(join(dirs.get(id)!, 'adapter_config.json'), 'utf8'));
        expect(config).toMatchObject({
          peft_type: 'LORA',
          r: spec.rank,
          lora_alpha: spec.alpha,
          target_modules: spec.targets,
          bias: 'none',
        });
      }
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('covers every module kind of the tiny Llama', () => {
    const kinds = new Set(moduleSpecs(TINY_LLAMA).map((m) => m.short));
    expect([...kinds].sort()).toEqual([
      'down_proj',
      'embed_tokens',
      'gate_proj',
      'k_proj',
      'lm_head',
      'o_proj',
      'q_proj',
      'up_proj',
      'v_proj',
    ]);
  });
});
