import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSafetensors, serializeSafetensors } from '../formats/safetensors.js';
import { codeOf } from '../test-support.js';
import { createAdapter } from './adapter.js';
import { loadPeftAdapter, loadPeftAdapterFromDir } from './peft.js';
import { isTargeted, moduleScale, parsePeftConfig } from './peft-config.js';
import { serializePeftAdapter } from './peft-writer.js';

const q = 'model.layers.0.self_attn.q_proj';
const seq = (n: number) => Float32Array.from({ length: n }, (_, i) => (i + 1) / 8);
const weights = (rank = 2) =>
  serializePeftAdapter([{ name: q, kind: 'linear', rank, a: seq(rank * 3), b: seq(4 * rank), inFeatures: 3, outFeatures: 4 }], {})
    .safetensors;

describe('adapter_config.json fields that change the forward pass are refused, naming the field (PEFT LoraConfig)', () => {
  it.each([
    ['layer_replication', [[0, 4]]],
    ['lora_bias', true],
    ['use_qalora', true],
    ['target_parameters', ['experts.gate_up_proj']],
    ['trainable_token_indices', [5, 6]],
    ['arrow_config', { top_k: 2 }],
    ['use_bdlora', { nblocks: 2 }],
    ['megatron_config', { tp: 2 }],
    ['init_lora_weights', 'pissa'],
    ['init_lora_weights', 'pissa_niter_4'],
    ['init_lora_weights', 'olora'],
    ['init_lora_weights', 'corda'],
    ['init_lora_weights', 'loftq'],
    ['init_lora_weights', 'mica'],
    ['some_future_feature', { enabled: true }],
  ])('%s = %j', (field, value) => {
    expect(() => parsePeftConfig({ r: 2, [field]: value })).toThrow(new RegExp(`E_UNSUPPORTED.*${field}`));
  });

  it.each([
    ['lora_dropout', 0.1],
    ['init_lora_weights', true],
    ['init_lora_weights', 'gaussian'],
    ['init_lora_weights', 'eva'],
    ['task_type', 'CAUSAL_LM'],
    ['base_model_name_or_path', 'HuggingFaceTB/SmolLM2-135M'],
    ['alora_invocation_tokens', null],
    ['alora_invocation_tokens', [128, 9]],
    ['layer_replication', null],
    ['trainable_token_indices', null],
    ['target_parameters', []],
    ['qalora_group_size', 16],
    ['runtime_config', { ephemeral_gpu_offload: false }],
    ['some_future_feature', null],
    ['another_future_feature', false],
    ['__proto__', { polluted: true }],
  ])('accepts %s = %j (no effect on the forward pass)', (field, value) => {
    const config = JSON.parse(`{"r": 2, ${JSON.stringify(field)}: ${JSON.stringify(value)}}`);
    if (field === '__proto__') expect(() => parsePeftConfig(config)).toThrow(/E_UNSUPPORTED.*"__proto__"/);
    else expect(parsePeftConfig(config).r).toBe(2);
  });
});

describe('PEFT module matching (tuners_utils.check_target_module_exists, utils.other.get_pattern_key)', () => {
  const names = [
    'model.layers.0.self_attn.q_proj',
    'model.layers.1.self_attn.q_proj',
    'model.layers.1.mlp.down_proj',
    'model.layers.12.self_attn.v_proj',
    'lm_head',
  ];
  const targeted = (config: Record<string, unknown>) => names.filter((n) => isTargeted(parsePeftConfig({ r: 2, ...config }), n));

  it('target_modules as a list: exact name or dotted suffix; as a string: a full match', () => {
    expect(targeted({ target_modules: ['q_proj', 'lm_head'] })).toEqual([names[0], names[1], 'lm_head']);
    expect(targeted({ target_modules: ['proj'] })).toEqual([]);
    expect(targeted({ target_modules: '.*\\.(q|v)_proj' })).toEqual([names[0], names[1], names[3]]);
    expect(targeted({ target_modules: 'q_proj' })).toEqual([]); // fullmatch: the whole name
  });

  it('exclude_modules wins over target_modules', () => {
    expect(targeted({ target_modules: ['q_proj', 'v_proj'], exclude_modules: ['model.layers.1.self_attn.q_proj'] })).toEqual([
      names[0],
      names[3],
    ]);
    expect(targeted({ target_modules: '.*_proj', exclude_modules: '.*\\.layers\\.1\\..*' })).toEqual([names[0], names[3]]);
  });

  it('layers_to_transform (with and without layers_pattern) picks layers by index', () => {
    expect(targeted({ target_modules: ['q_proj', 'v_proj', 'down_proj'], layers_to_transform: [1, 12] })).toEqual([
      names[1],
      names[2],
      names[3],
    ]);
    expect(targeted({ target_modules: ['q_proj', 'v_proj'], layers_to_transform: 0, layers_pattern: 'layers' })).toEqual([names[0]]);
    expect(targeted({ target_modules: ['q_proj'], layers_to_transform: [0], layers_pattern: ['blocks'] })).toEqual([]);
  });

  it('rank_pattern / alpha_pattern: a key matches a dotted suffix (dots are regex dots), first match wins', () => {
    const c = parsePeftConfig({
      r: 2,
      lora_alpha: 4,
      rank_pattern: { 'layers.1.self_attn.q_proj': 8, q_proj: 4, 'layers\\.12\\..*': 16 },
      alpha_pattern: { 'v_pro.': 32 },
    });
    expect(moduleScale(c, names[0] as string)).toEqual({ rank: 4, scale: 1 });
    expect(moduleScale(c, names[1] as string)).toEqual({ rank: 8, scale: 0.5 });
    expect(moduleScale(c, names[3] as string)).toEqual({ rank: 16, scale: 2 });
    expect(moduleScale(c, 'model.layers.1Xself_attn.q_proj')).toEqual({ rank: 8, scale: 0.5 }); // '.' is a regex dot
    expect(moduleScale(c, 'xq_proj')).toEqual({ rank: 2, scale: 2 }); // not a dotted suffix
  });

  it('refuses regex syntax that needs backtracking with E_UNSUPPORTED, and overlong patterns with E_FORMAT', () => {
    expect(() => parsePeftConfig({ target_modules: '(?=q)q_proj' })).toThrow(/E_UNSUPPORTED.*target_modules.*linear time/);
    expect(() => parsePeftConfig({ rank_pattern: { '(a)\\1': 4 } })).toThrow(/E_UNSUPPORTED.*rank_pattern key/);
    expect(() => parsePeftConfig({ target_modules: 'a'.repeat(5000) })).toThrow(/E_FORMAT.*at most 4096/);
  });
});

describe('adapter files a stranger could send', () => {
  it('skips the base embed_tokens / lm_head weights PEFT saves beside the adapter (as vLLM does)', () => {
    const files = serializePeftAdapter(
      [{ name: 'model.embed_tokens', kind: 'embedding', rank: 2, a: seq(10), b: seq(6), inFeatures: 5, outFeatures: 3 }],
      {},
    );
    const parsed = parseSafetensors(files.safetensors);
    const withBase = serializeSafetensors({
      ...Object.fromEntries(Object.entries(parsed.tensors).map(([k, t]) => [k, { shape: t.shape, data: t.data }])),
      'base_model.model.model.embed_tokens.base_layer.weight': { shape: [5, 3], data: seq(15) },
      'base_model.model.lm_head.base_layer.weight': { shape: [5, 3], data: seq(15) },
    });
    const adapter = loadPeftAdapter({ id: 'emb', config: { r: 2, target_modules: ['embed_tokens'] }, safetensors: withBase });
    expect([...adapter.modules.keys()]).toEqual(['model.embed_tokens']);
  });

  it('takes an ArrayBuffer (fetch().arrayBuffer()) like a Uint8Array', () => {
    const bytes = weights();
    const adapter = loadPeftAdapter({ id: 'ab', config: { r: 2 }, safetensors: bytes.slice().buffer });
    expect(adapter.modules.get(q)?.rank).toBe(2);
  });

  it('finds a NaN or ±Infinity at any position of A (the four-at-a-time scan and its tail), and passes the largest finite values', () => {
    for (let length = 1; length <= 11; length++) {
      const ok = Float32Array.from({ length }, (_, i) => (i % 2 ? -3.4028234663852886e38 : 3.4028234663852886e38));
      const module = (a: Float32Array) => [
        { name: q, kind: 'linear' as const, rank: 1, scale: 1, a, b: seq(4), inFeatures: length, outFeatures: 4 },
      ];
      expect(createAdapter('ok', module(ok)).modules.get(q)?.a).toBe(ok);
      for (let at = 0; at < length; at++) {
        for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
          const a = ok.slice();
          a[at] = bad;
          expect(() => createAdapter('bad', module(a))).toThrow(`A[${at}] is ${bad}`);
        }
      }
    }
  });

  it('refuses non-finite weights, bad ids, throwing getters and non-objects with a LoRAError and a bounded message', () => {
    const nan = serializePeftAdapter(
      [{ name: q, kind: 'linear', rank: 1, a: Float32Array.of(1, Number.NaN, 3), b: seq(4), inFeatures: 3, outFeatures: 4 }],
      {},
    ).safetensors;
    expect(() => loadPeftAdapter({ id: 'nan', config: { r: 1 }, safetensors: nan })).toThrow(/E_FORMAT.*A\[1\] is NaN/);
    const huge = 'x'.repeat(1_000_000);
    let message = '';
    try {
      loadPeftAdapter({ id: huge, config: { r: 2 }, safetensors: weights() });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/E_CONFIG.*at most 256 characters.*1000000 characters/);
    expect(message.length).toBeLessThan(400);
    const getter = {
      id: 'g',
      config: {},
      get safetensors(): Uint8Array {
        throw new TypeError('nope');
      },
    };
    expect(codeOf(() => loadPeftAdapter(getter))).toBe('E_CONFIG');
    expect(codeOf(() => loadPeftAdapter(42 as never))).toBe('E_CONFIG');
    expect(
      codeOf(() =>
        loadPeftAdapter({
          id: 'p',
          config: new Proxy(
            {},
            {
              ownKeys: () => {
                throw new Error('x');
              },
            },
          ),
          safetensors: weights(),
        }),
      ),
    ).toBe('E_FORMAT');
    expect(codeOf(() => loadPeftAdapter({ id: 'p', config: {}, safetensors: 'bytes' as never }))).toBe('E_CONFIG');
  });
});

describe('loadPeftAdapterFromDir on paths that are not what they seem (Node)', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'peft-hostile-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('refuses a non-string directory with E_CONFIG', async () => {
    await expect(loadPeftAdapterFromDir(42 as never)).rejects.toThrow(/E_CONFIG.*expects a directory path, got 42/);
  });

  it('refuses a FIFO, a directory and an oversized file without reading them, naming the file', async () => {
    const fifo = join(root, 'fifo');
    await mkdir(fifo);
    await writeFile(join(fifo, 'adapter_config.json'), '{"r": 2}');
    execFileSync('mkfifo', [join(fifo, 'adapter_model.safetensors')]);
    await expect(loadPeftAdapterFromDir(fifo)).rejects.toThrow(/E_FORMAT.*fifo\/adapter_model\.safetensors is a FIFO/);

    const nested = join(root, 'nested');
    await mkdir(join(nested, 'adapter_config.json'), { recursive: true });
    await expect(loadPeftAdapterFromDir(nested)).rejects.toThrow(/E_FORMAT.*adapter_config\.json is a directory/);

    const big = join(root, 'big');
    await mkdir(big);
    await writeFile(join(big, 'adapter_config.json'), '{"r": 2}');
    await writeFile(join(big, 'adapter_model.safetensors'), '');
    await truncate(join(big, 'adapter_model.safetensors'), 3 * 1024 ** 3); // sparse: nothing is written
    await expect(loadPeftAdapterFromDir(big)).rejects.toThrow(
      /E_FORMAT.*is 3221225472 bytes; the adapter_model\.safetensors may be at most 2147483648/,
    );
    await expect(loadPeftAdapterFromDir(big, { maxBytes: 1024 })).rejects.toThrow(/may be at most 1024 bytes/);
  });

  it('names the directory in format errors', async () => {
    const dir = join(root, 'bad-config');
    await mkdir(dir);
    await writeFile(join(dir, 'adapter_config.json'), '{"r": 2, "use_dora": "yes"}');
    await writeFile(join(dir, 'adapter_model.safetensors'), weights());
    await expect(loadPeftAdapterFromDir(dir)).rejects.toThrow(
      /E_FORMAT.*bad-config: adapter_config\.json: use_dora must be a boolean, got "yes"/,
    );
  });
});
