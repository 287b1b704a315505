import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { serializeSafetensors } from '../formats/safetensors.js';
import { loadPeftAdapter, loadPeftAdapterFromDir } from './peft.js';
import { serializePeftAdapter, writePeftAdapterDir } from './peft-writer.js';

const q = 'model.layers.0.self_attn.q_proj';
const v = 'model.layers.0.self_attn.v_proj';
const emb = 'model.embed_tokens';
const seq = (n: number, k = 1) => Float32Array.from({ length: n }, (_, i) => k * (i + 1));

function files(config: Record<string, unknown>, dtype: 'F32' | 'BF16' = 'F32', qRank = 2) {
  return serializePeftAdapter(
    [
      { name: q, kind: 'linear', rank: qRank, a: seq(qRank * 3), b: seq(4 * qRank, 0.5), inFeatures: 3, outFeatures: 4 },
      { name: v, kind: 'linear', rank: 2, a: seq(6), b: seq(4), inFeatures: 3, outFeatures: 2 },
      { name: emb, kind: 'embedding', rank: 2, a: seq(2 * 5), b: seq(3 * 2), inFeatures: 5, outFeatures: 3 },
    ],
    config,
    dtype,
  );
}

describe('loadPeftAdapter', () => {
  it('reads PEFT keys into modules with alpha/r scaling', () => {
    const f = files({ r: 2, lora_alpha: 8, target_modules: ['q_proj', 'v_proj', 'embed_tokens'] });
    const adapter = loadPeftAdapter({ id: 'a', config: f.config, safetensors: f.safetensors });
    expect(adapter.id).toBe('a');
    expect(adapter.rank).toBe(2);
    expect([...adapter.modules.keys()].sort()).toEqual([emb, q, v]);
    const qm = adapter.modules.get(q)!;
    expect(qm).toMatchObject({ kind: 'linear', rank: 2, scale: 4, inFeatures: 3, outFeatures: 4 });
    expect(Array.from(qm.a)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(adapter.modules.get(emb)).toMatchObject({ kind: 'embedding', inFeatures: 5, outFeatures: 3 });
    expect(adapter.metadata).toEqual({ format: 'pt' });
  });

  it('uses alpha/√r with rsLoRA and applies rank_pattern / alpha_pattern per module', () => {
    const f = files(
      { r: 2, lora_alpha: 8, use_rslora: true, rank_pattern: { q_proj: 4 }, alpha_pattern: { 'layers\\.0\\.self_attn\\.v_proj': 2 } },
      'BF16',
      4,
    );
    const adapter = loadPeftAdapter({ id: 'rs', config: JSON.parse(f.config), safetensors: f.safetensors });
    expect(adapter.modules.get(q)).toMatchObject({ rank: 4, scale: 8 / 2 });
    expect(adapter.modules.get(v)).toMatchObject({ rank: 2, scale: 2 / Math.SQRT2 });
    expect(adapter.rank).toBe(4);
  });

  it.each([
    [{ use_dora: true }, /DoRA/],
    [{ bias: 'all' }, /bias "all" is not supported/],
    [{ modules_to_save: ['lm_head'] }, /modules_to_save/],
    [{ peft_type: 'IA3' }, /peft_type "IA3"/],
  ])('refuses %j with E_UNSUPPORTED', (extra, message) => {
    const f = files({ r: 2, lora_alpha: 8, ...extra });
    expect(() => loadPeftAdapter({ id: 'x', config: f.config, safetensors: f.safetensors })).toThrow(message);
    expect(() => loadPeftAdapter({ id: 'x', config: f.config, safetensors: f.safetensors })).toThrow(/E_UNSUPPORTED/);
  });

  it.each([
    ['a rank that disagrees with r', { r: 3, lora_alpha: 8 }, undefined, /do not have the rank 3/],
    [
      'a module outside target_modules',
      { r: 2, lora_alpha: 8, target_modules: ['q_proj', 'embed_tokens'] },
      undefined,
      /v_proj: holds weights but is not adapted by target_modules/,
    ],
    [
      'a regex target_modules that misses',
      { r: 2, lora_alpha: 8, target_modules: '.*\\.q_proj' },
      undefined,
      /not adapted by target_modules/,
    ],
    [
      'a lora_A without lora_B',
      { r: 2 },
      { 'base_model.model.x.lora_A.weight': { shape: [2, 3], data: seq(6) } },
      /module x: has lora_A but no lora_B/,
    ],
    ['an unexpected key', { r: 2 }, { 'base_model.model.x.weight': { shape: [1], data: seq(1) } }, /unexpected tensor/],
    ['a file without LoRA weights', { r: 2 }, {}, /holds no LoRA weights/],
    ['r = 0', { r: 0 }, undefined, /r must be a positive integer ≤ 65536, got 0/],
  ])('rejects %s with E_FORMAT', (_, config, tensors, message) => {
    const safetensors = tensors ? serializeSafetensors(tensors) : files(config).safetensors;
    expect(() => loadPeftAdapter({ id: 'x', config, safetensors })).toThrow(message);
    expect(() => loadPeftAdapter({ id: 'x', config, safetensors })).toThrow(/E_FORMAT/);
  });

  it('refuses DoRA magnitude vectors and LoRA biases found in the weights', () => {
    const dora = serializeSafetensors({ 'base_model.model.x.lora_magnitude_vector': { shape: [1], data: seq(1) } });
    expect(() => loadPeftAdapter({ id: 'x', config: {}, safetensors: dora })).toThrow(/E_UNSUPPORTED.*DoRA/);
    const bias = serializeSafetensors({ 'base_model.model.x.lora_B.bias': { shape: [1], data: seq(1) } });
    expect(() => loadPeftAdapter({ id: 'x', config: {}, safetensors: bias })).toThrow(/E_UNSUPPORTED.*bias/);
  });
});

describe('loadPeftAdapterFromDir (Node)', () => {
  it('loads what writePeftAdapterDir wrote, refuses pickles, names missing files', async () => {
    const root = await mkdtemp(join(tmpdir(), 'peft-'));
    try {
      const dir = join(root, 'my-adapter');
      await writePeftAdapterDir(dir, files({ r: 2, lora_alpha: 16 }, 'BF16'));
      const adapter = await loadPeftAdapterFromDir(dir);
      expect(adapter.id).toBe('my-adapter');
      expect(adapter.modules.get(q)?.scale).toBe(8);

      const pickled = join(root, 'pickled');
      await writePeftAdapterDir(pickled, files({ r: 2 }));
      await rm(join(pickled, 'adapter_model.safetensors'));
      await writeFile(join(pickled, 'adapter_model.bin'), 'not loaded');
      await expect(loadPeftAdapterFromDir(pickled)).rejects.toThrow(/E_UNSUPPORTED.*adapter_model\.bin.*convert it to safetensors/);
      await expect(loadPeftAdapterFromDir(join(root, 'nope'))).rejects.toThrow(/E_NOT_FOUND.*adapter_config\.json does not exist/);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
