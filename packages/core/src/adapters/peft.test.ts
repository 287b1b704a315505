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

  it('loads DoRA (use_dora, lora_magnitude_vector [out]) under every key form PEFT has written', () => {
    const mq = seq(4, 0.25);
    const mv = seq(2, 0.75);
    const modules = [
      { name: q, kind: 'linear' as const, rank: 2, a: seq(6), b: seq(8, 0.5), inFeatures: 3, outFeatures: 4, magnitude: mq },
      { name: v, kind: 'linear' as const, rank: 2, a: seq(6), b: seq(4), inFeatures: 3, outFeatures: 2, magnitude: mv },
    ];
    const f = serializePeftAdapter(modules, { r: 2, lora_alpha: 4 });
    expect(JSON.parse(f.config).use_dora).toBe(true);
    const adapter = loadPeftAdapter({ id: 'd', config: f.config, safetensors: f.safetensors });
    expect(Array.from(adapter.modules.get(q)?.magnitude ?? [])).toEqual(Array.from(mq));
    expect(Array.from(adapter.modules.get(v)?.magnitude ?? [])).toEqual(Array.from(mv));
    expect(adapter.config.useDora).toBe(true);
    // In-memory names (before PEFT's save renames them): `.weight` and `.<adapter name>.weight`.
    for (const suffix of ['lora_magnitude_vector.weight', 'lora_magnitude_vector.default.weight']) {
      const tensors = {
        [`base_model.model.${q}.lora_A.weight`]: { shape: [2, 3], data: seq(6) },
        [`base_model.model.${q}.lora_B.weight`]: { shape: [4, 2], data: seq(8) },
        [`base_model.model.${q}.${suffix}`]: { shape: [4], data: mq },
      };
      const loaded = loadPeftAdapter({ id: 'd', config: { r: 2, use_dora: true }, safetensors: serializeSafetensors(tensors) });
      expect(Array.from(loaded.modules.get(q)?.magnitude ?? [])).toEqual(Array.from(mq));
    }
  });

  it.each([
    [
      'use_dora without magnitude vectors',
      { use_dora: true },
      undefined,
      /E_FORMAT.*q_proj: adapter_config\.json sets use_dora but the module has no lora_magnitude_vector/,
    ],
    [
      'a magnitude vector without use_dora',
      {},
      [4],
      /E_FORMAT.*q_proj has a DoRA lora_magnitude_vector but adapter_config\.json does not set use_dora/,
    ],
    [
      'a magnitude vector of the wrong shape',
      { use_dora: true },
      [3],
      /E_FORMAT.*q_proj: lora_magnitude_vector is \[3\]; DoRA needs one value per output feature, \[4\]/,
    ],
    ['a magnitude vector as a matrix', { use_dora: true }, [4, 1], /E_FORMAT.*lora_magnitude_vector is \[4,1\]/],
  ])('refuses %s', (_, extra, magnitudeShape, message) => {
    const tensors: Record<string, { shape: number[]; data: Float32Array }> = {
      [`base_model.model.${q}.lora_A.weight`]: { shape: [2, 3], data: seq(6) },
      [`base_model.model.${q}.lora_B.weight`]: { shape: [4, 2], data: seq(8) },
    };
    if (magnitudeShape !== undefined) {
      const size = magnitudeShape.reduce((a, b) => a * b, 1);
      tensors[`base_model.model.${q}.lora_magnitude_vector`] = { shape: magnitudeShape, data: seq(size) };
    }
    expect(() => loadPeftAdapter({ id: 'x', config: { r: 2, ...extra }, safetensors: serializeSafetensors(tensors) })).toThrow(message);
  });

  it('loads DoRA on an embedding (one magnitude per embedding dimension); refuses a magnitude vector of no module (E_FORMAT)', () => {
    const module = { name: emb, kind: 'embedding' as const, rank: 2, a: seq(2 * 5), b: seq(3 * 2), inFeatures: 5, outFeatures: 3 };
    const f = serializePeftAdapter([{ ...module, magnitude: Float32Array.from([1, 2, 3]) }], { r: 2, use_dora: true });
    const loaded = loadPeftAdapter({ id: 'x', config: f.config, safetensors: f.safetensors });
    expect(Array.from(loaded.modules.get(emb)?.magnitude ?? [])).toEqual([1, 2, 3]);
    // One value per token instead: refused.
    const perToken = serializeSafetensors({
      [`base_model.model.${emb}.lora_embedding_A`]: { shape: [2, 5], data: module.a },
      [`base_model.model.${emb}.lora_embedding_B`]: { shape: [3, 2], data: module.b },
      [`base_model.model.${emb}.lora_magnitude_vector`]: { shape: [5], data: seq(5) },
    });
    expect(() => loadPeftAdapter({ id: 'x', config: f.config, safetensors: perToken })).toThrow(
      /E_FORMAT.*embed_tokens: lora_magnitude_vector is \[5\]; DoRA needs one value per output feature, \[3\]/,
    );
    const lone = serializeSafetensors({ 'base_model.model.x.lora_magnitude_vector': { shape: [1], data: seq(1) } });
    expect(() => loadPeftAdapter({ id: 'x', config: { use_dora: true }, safetensors: lone })).toThrow(
      /E_FORMAT.*module x has a lora_magnitude_vector but no lora_A \/ lora_B/,
    );
  });

  it('refuses LoRA biases found in the weights', () => {
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
