import { createLoRA, isLoRAError } from '@lora/core';
import { describe, expect, it } from 'vitest';
import { createTpuSimBackend } from './index.js';
import { FLAG_NAMES, resolveTpuSimOptions } from './options.js';

describe('backendOptions', () => {
  it('presets set every flag; single flags override the preset', () => {
    expect(Object.values(resolveTpuSimOptions({ preset: 'all-off' }).flags).every((v) => v === false)).toBe(true);
    expect(Object.values(resolveTpuSimOptions({}).flags).every((v) => v === true)).toBe(true);
    const o = resolveTpuSimOptions({ preset: 'all-off', flags: { laning: true }, chip: 'v5e', stepOverheadMicros: 1 });
    expect(o.flags.laning).toBe(true);
    expect(o.flags.fastMask).toBe(false);
    expect(o.chip.mxu).toBe(128);
    expect(o.stepOverheadSeconds).toBeCloseTo(1e-6, 12);
    expect(resolveTpuSimOptions({ preset: 'einsum' }).variant).toBe('einsum');
    expect(Object.keys(resolveTpuSimOptions({}).flags)).toEqual([...FLAG_NAMES]);
  });

  for (const [label, bad, message] of [
    ['unknown key', { presets: 'all-on' }, /unknown backendOptions key\(s\) presets/],
    ['unknown preset', { preset: 'fast' }, /preset must be one of all-off, all-on, einsum/],
    ['unknown chip', { chip: 'v4' }, /chip must be one of v5e, v6e/],
    ['unknown flag', { flags: { lanes: true } }, /unknown flag backendOptions\.flags\.lanes/],
    ['non-boolean flag', { flags: { laning: 1 } }, /flags\.laning must be a boolean/],
    ['flags not an object', { flags: [] }, /flags must be an object/],
    ['negative overhead', { stepOverheadMicros: -1 }, /stepOverheadMicros/],
    ['kernel flag on the einsum', { preset: 'einsum', flags: { laning: true } }, /does not apply to preset "einsum"/],
  ] as const) {
    it(`${label} is LoRAError E_CONFIG`, () => {
      try {
        createTpuSimBackend(bad as Record<string, unknown>);
        expect.fail('expected E_CONFIG');
      } catch (e) {
        expect(isLoRAError(e) && e.code === 'E_CONFIG').toBe(true);
        expect((e as Error).message).toMatch(message);
      }
    });
  }

  it('createLoRA({ backend: "tpu-sim", backendOptions }) resolves through the registry', async () => {
    const rt = await createLoRA({ backend: 'tpu-sim', backendOptions: { preset: 'all-off', chip: 'v5e' } });
    try {
      expect(rt.backend.name).toBe('tpu-sim');
      expect(rt.backend.stats?.().programsCompiled).toBe(0);
    } finally {
      rt.dispose();
    }
    await expect(createLoRA({ backend: 'tpu-sim', backendOptions: { chip: 'v7' } })).rejects.toThrow(/E_CONFIG|chip must be/);
  });
});
