import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bf16ToFloat, floatToBf16, parseSafetensors, serializeSafetensors } from '@lora/core';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, loadModelConfig } from './checkpoint.js';
import { buildCheckpoint, CHECKPOINT_PRESETS, type CheckpointSpec, checkpointConfigJson, writeCheckpoint } from './fixtures.js';
import type { CausalLM } from './model.js';
import { checkpointTensors, modelFloat32Bytes } from './modules.js';
import { Sequence } from './sequence.js';
import type { LoadProgress } from './source.js';
import { memorySource } from './sources/memory.js';
import { referenceRuntime } from './test-support.js';

type Files = Record<string, Uint8Array>;
type Tensors = Record<string, { shape: number[]; data: Float32Array }>;

const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
/** Rewrites one safetensors file through `edit` (as F32). */
function editTensors(files: Files, file: string, edit: (t: Tensors) => void): Files {
  const tensors = parseSafetensors(files[file] as Uint8Array).tensors as Tensors;
  edit(tensors);
  return { ...files, [file]: serializeSafetensors(tensors, { format: 'pt' }) };
}
const code =
  (c: string, ...messages: RegExp[]) =>
  (e: unknown) =>
    (e as { code?: string }).code === c && messages.every((m) => m.test((e as Error).message));

/** The logits of one fixed prompt and one decode step. */
async function logitsOf(model: CausalLM): Promise<Float32Array[]> {
  const seq = new Sequence();
  const out: Float32Array[] = [];
  for (const tokens of [Int32Array.of(3, 14, 15, 92, 65), Int32Array.of(35)]) {
    model.runtime.adapters.setBatch([null], [tokens.length]);
    out.push(await model.forward([{ seq, tokens }]));
  }
  seq.dispose();
  return out;
}

async function load(files: Files | string, options: { maxBytes?: number; onProgress?: (e: LoadProgress) => void } = {}) {
  const runtime = await referenceRuntime();
  try {
    const { model } = await loadModel(files, { runtime, ...options });
    const dispose = () => {
      model.dispose();
      runtime.dispose();
    };
    return { model, runtime, dispose };
  } catch (err) {
    runtime.dispose();
    throw err;
  }
}

/**
 * The load fails as `check` expects, leaving no tensor behind, both from memory (whole files,
 * parsed by core) and from a directory (headers first, tensors read at offsets): the same checks
 * and messages, up to the source's name.
 */
const rejects = async (files: Files, check: (e: unknown) => boolean, options = {}, { fromDir = true } = {}) => {
  const before = tf.memory().numTensors;
  await expect(load(files, options)).rejects.toSatisfy(check);
  expect(tf.memory().numTensors).toBe(before);
  if (!fromDir) return;
  const path = await mkdtemp(join(tmpdir(), 'lora-llama-rejects-'));
  try {
    await writeCheckpoint(path, files);
    const asInMemory = (e: unknown) =>
      check(Object.assign(new Error((e as Error).message.replaceAll(path, 'in-memory files')), { code: (e as { code?: string }).code }));
    await expect(load(path, options)).rejects.toSatisfy(asInMemory);
    expect(tf.memory().numTensors).toBe(before);
  } finally {
    await rm(path, { recursive: true, force: true });
  }
};

describe('loadModel', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lora-llama-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a sharded checkpoint gives exactly the logits of the same weights in one file, read from a directory', async () => {
    const spec: CheckpointSpec = CHECKPOINT_PRESETS['llama-untied'];
    const one = buildCheckpoint(spec);
    const sharded = buildCheckpoint({ ...spec, shards: 3 });
    expect(Object.keys(sharded.files).sort()).toEqual([
      'config.json',
      'model-00001-of-00003.safetensors',
      'model-00002-of-00003.safetensors',
      'model-00003-of-00003.safetensors',
      'model.safetensors.index.json',
    ]);
    const index = JSON.parse(new TextDecoder().decode(sharded.files['model.safetensors.index.json']));
    expect(index.metadata.total_size).toBe(modelFloat32Bytes(sharded.config));
    const shardDir = join(dir, 'sharded');
    await writeCheckpoint(shardDir, sharded.files);
    const events: LoadProgress[] = [];
    const a = await load(one.files);
    const b = await load(shardDir, { onProgress: (e) => events.push(e) });
    expect(await logitsOf(b.model)).toEqual(await logitsOf(a.model));
    a.dispose();
    b.dispose();
    // Reports per file as its bytes arrive (a shard read at offsets: per piece), files in order,
    // each weights file ending with a report of all its bytes once converted.
    expect(events.map((e) => e.file).filter((f, i, all) => f !== all[i - 1])).toEqual([
      'config.json',
      'model.safetensors.index.json',
      'model-00001-of-00003.safetensors',
      'model-00002-of-00003.safetensors',
      'model-00003-of-00003.safetensors',
    ]);
    expect(events.every((e) => e.total === undefined || e.loaded <= e.total)).toBe(true);
    expect(events.every((e, i) => e.file !== events[i - 1]?.file || e.loaded >= (events[i - 1] as LoadProgress).loaded)).toBe(true);
    for (const shard of Object.keys(sharded.files).filter((f) => f.endsWith('.safetensors'))) {
      const last = events.filter((e) => e.file === shard).at(-1) as LoadProgress;
      expect(last.loaded).toBe(sharded.files[shard]?.byteLength);
      expect(last.total).toBe(last.loaded);
    }
  });

  it.each([
    ['BF16', 'llama-bf16'],
    ['F16', 'qwen2-sliding-window'],
  ] as const)('a %s checkpoint loads as its rounded values (the same logits as those values stored as F32)', async (dtype, preset) => {
    const half = buildCheckpoint(CHECKPOINT_PRESETS[preset]);
    const stored = parseSafetensors(half.files['model.safetensors'] as Uint8Array).tensors;
    expect(new Set(Object.values(stored).map((t) => t.dtype))).toEqual(new Set([dtype]));
    if (dtype === 'BF16') {
      const rounded = half.weights.get('model.layers.0.mlp.up_proj.weight') as Float32Array;
      expect(rounded.every((v) => bf16ToFloat(floatToBf16(v)) === v)).toBe(true);
      const unrounded = buildCheckpoint({ ...CHECKPOINT_PRESETS[preset], dtype: 'F32' }).weights.get(
        'model.layers.0.mlp.up_proj.weight',
      ) as Float32Array;
      expect(rounded).not.toEqual(unrounded);
    }
    const asF32 = {
      'config.json': half.files['config.json'] as Uint8Array,
      'model.safetensors': serializeSafetensors(
        Object.fromEntries(
          checkpointTensors(half.config).map((t) => [t.name, { shape: t.shape, data: half.weights.get(t.name) as Float32Array }]),
        ),
      ),
    };
    const a = await load(half.files);
    const b = await load(asF32);
    // From a directory: decoded piece by piece behind reads at offsets.
    const path = join(dir, `${preset}-half`);
    await writeCheckpoint(path, half.files);
    const c = await load(path);
    expect(await logitsOf(a.model)).toEqual(await logitsOf(b.model));
    expect(await logitsOf(c.model)).toEqual(await logitsOf(b.model));
    for (const m of [a, b, c]) m.dispose();
  });

  it('accepts what transformers ignores: rotary inv_freq buffers, and lm_head.weight equal to the tied embedding', async () => {
    const { files, config } = buildCheckpoint(CHECKPOINT_PRESETS['llama-tied']);
    const extra = editTensors(files, 'model.safetensors', (t) => {
      t['model.layers.0.self_attn.rotary_emb.inv_freq'] = { shape: [8], data: new Float32Array(8) };
      t['lm_head.weight'] = { ...(t['model.embed_tokens.weight'] as Tensors[string]) };
    });
    const m = await load(extra);
    expect(m.model.config).toEqual(config);
    const path = join(dir, 'tied-extra');
    await writeCheckpoint(path, extra);
    const d = await load(path);
    expect(await logitsOf(d.model)).toEqual(await logitsOf(m.model));
    m.dispose();
    d.dispose();
    const differs = editTensors(files, 'model.safetensors', (t) => {
      t['lm_head.weight'] = { shape: [128, 64], data: new Float32Array(128 * 64) };
    });
    await rejects(differs, code('E_FORMAT', /lm_head\.weight differs from model\.embed_tokens\.weight.*tie_word_embeddings/));
  });

  it('loadModelConfig reads config.json only', async () => {
    const { files, config } = buildCheckpoint(CHECKPOINT_PRESETS['qwen2-bias']);
    expect(await loadModelConfig({ 'config.json': files['config.json'] as Uint8Array })).toEqual(config);
  });

  describe('bad input: the right code, and a message naming the file, the tensor, what was expected and found', () => {
    const { files } = buildCheckpoint(CHECKPOINT_PRESETS['llama-untied']);
    const sharded = buildCheckpoint({ ...CHECKPOINT_PRESETS['llama-untied'], shards: 2 }).files;
    const editIndex = (edit: (index: { weight_map: Record<string, string> }) => void): Files => {
      const index = JSON.parse(new TextDecoder().decode(sharded['model.safetensors.index.json']));
      edit(index);
      return { ...sharded, 'model.safetensors.index.json': json(index) };
    };

    it('an unsupported architecture lists the supported ones', async () => {
      const config = {
        ...checkpointConfigJson(CHECKPOINT_PRESETS['llama-untied']),
        architectures: ['GemmaForCausalLM'],
        model_type: 'gemma',
      };
      await rejects(
        { ...files, 'config.json': json(config) },
        code(
          'E_UNSUPPORTED',
          /in-memory files\/config\.json: architectures \["GemmaForCausalLM"\].*supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM/,
        ),
      );
    });

    it('a hostile config.json is refused before any weights are read', async () => {
      const config = { ...checkpointConfigJson(CHECKPOINT_PRESETS['llama-untied']), vocab_size: 4_000_000, hidden_size: 131072 };
      let reads = 0;
      const source = memorySource({ ...files, 'config.json': json(config) });
      const counting = {
        description: source.description,
        read: (n: string, o: Parameters<typeof source.read>[1]) => {
          reads++;
          return source.read(n, o);
        },
      };
      const runtime = await referenceRuntime();
      await expect(loadModel(counting, { runtime })).rejects.toSatisfy(code('E_CAPACITY', /maxModelBytes = 8589934592/));
      expect(reads).toBe(1);
      runtime.dispose();
    });

    it('a missing tensor', async () => {
      const broken = editTensors(files, 'model.safetensors', (t) => {
        delete t['model.layers.1.mlp.up_proj.weight'];
      });
      await rejects(
        broken,
        code(
          'E_FORMAT',
          /in-memory files\/model\.safetensors: missing tensor model\.layers\.1\.mlp\.up_proj\.weight \(expected shape \[96, 64\]\)/,
        ),
      );
    });

    it('a tensor of the wrong shape', async () => {
      const broken = editTensors(files, 'model.safetensors', (t) => {
        t['model.layers.0.self_attn.k_proj.weight'] = { shape: [64, 16], data: new Float32Array(64 * 16) };
      });
      await rejects(
        broken,
        code(
          'E_FORMAT',
          /in-memory files\/model\.safetensors: model\.layers\.0\.self_attn\.k_proj\.weight has shape \[64, 16\]; config\.json implies \[16, 64\]/,
        ),
      );
    });

    it('an unexpected tensor', async () => {
      const broken = editTensors(files, 'model.safetensors', (t) => {
        t['model.layers.0.self_attn.q_norm.weight'] = { shape: [16], data: new Float32Array(16) };
      });
      await rejects(
        broken,
        code(
          'E_FORMAT',
          /model\.safetensors: unexpected tensor "model\.layers\.0\.self_attn\.q_norm\.weight": not a weight of a LlamaForCausalLM/,
        ),
      );
    });

    it('a corrupt safetensors file', async () => {
      const bytes = (files['model.safetensors'] as Uint8Array).slice(0, 100);
      await rejects(
        { ...files, 'model.safetensors': bytes },
        code('E_FORMAT', /in-memory files\/model\.safetensors: safetensors: header length \d+ runs past the end/),
      );
    });

    it('missing files', async () => {
      await rejects({ 'model.safetensors': files['model.safetensors'] as Uint8Array }, code('E_NOT_FOUND', /config\.json does not exist/));
      await rejects(
        { 'config.json': files['config.json'] as Uint8Array },
        code('E_NOT_FOUND', /has neither model\.safetensors nor model\.safetensors\.index\.json/),
      );
      const { 'model-00002-of-00002.safetensors': _, ...noShard } = sharded;
      await rejects(
        noShard,
        code('E_NOT_FOUND', /model-00002-of-00002\.safetensors does not exist; model\.safetensors\.index\.json lists it as a shard/),
      );
    });

    it.each([
      [
        'not JSON',
        { 'model.safetensors.index.json': new TextEncoder().encode('{"weight_map": ') },
        /model\.safetensors\.index\.json: not valid UTF-8 JSON/,
      ],
      [
        'no weight_map',
        { 'model.safetensors.index.json': json({ metadata: {} }) },
        /weight_map must be an object of tensor name → shard file, got undefined/,
      ],
      [
        'a bad total_size',
        { 'model.safetensors.index.json': json({ metadata: { total_size: -3 }, weight_map: {} }) },
        /metadata\.total_size must be a non-negative integer, got -3/,
      ],
    ])('a bad index.json: %s', async (_, patch, message) => {
      await rejects({ ...sharded, ...patch }, code('E_FORMAT', message));
    });

    it.each(['../model-00001-of-00002.safetensors', '/etc/passwd', 'sub/model.safetensors', '..', 'C:model.safetensors'])(
      'an index naming a shard outside the checkpoint: %s',
      async (shard) => {
        const broken = editIndex((i) => {
          i.weight_map['model.norm.weight'] = shard;
        });
        await rejects(broken, code('E_FORMAT', /weight_map\["model\.norm\.weight"\]: .* is not a plain file name/));
      },
    );

    it('an index that disagrees with its shards', async () => {
      const missing = editIndex((i) => {
        delete i.weight_map['model.norm.weight'];
      });
      await rejects(
        missing,
        code('E_FORMAT', /model\.safetensors\.index\.json: weight_map does not list model\.norm\.weight \(expected shape \[64\]\)/),
      );
      const moved = editIndex((i) => {
        i.weight_map['model.embed_tokens.weight'] = 'model-00002-of-00002.safetensors';
      });
      await rejects(
        moved,
        code(
          'E_FORMAT',
          /model-00001-of-00002\.safetensors holds model\.embed_tokens\.weight, but model\.safetensors\.index\.json puts it in model-00002-of-00002\.safetensors/,
        ),
      );
      const unknown = editIndex((i) => {
        i.weight_map['model.layers.9.mlp.up_proj.weight'] = 'model-00001-of-00002.safetensors';
      });
      await rejects(unknown, code('E_FORMAT', /unexpected tensor "model\.layers\.9\.mlp\.up_proj\.weight"/));
      const notSafetensors = editIndex((i) => {
        i.weight_map['model.norm.weight'] = 'pytorch_model.bin';
      });
      await rejects(notSafetensors, code('E_FORMAT', /shards must be \.safetensors files/));
    });

    it('a file over maxBytes', async () => {
      const size = (files['model.safetensors'] as Uint8Array).byteLength;
      // Each source words its refusal itself: the directory's is checked below.
      await rejects(
        files,
        code('E_FORMAT', new RegExp(`in-memory files: model\\.safetensors is ${size} bytes; at most maxBytes = 100000 may be read`)),
        { maxBytes: 100_000 },
        { fromDir: false },
      );
      await rejects(
        files,
        code('E_FORMAT', /config\.json is \d+ bytes; at most maxBytes = 100 may be read/),
        { maxBytes: 100 },
        { fromDir: false },
      );
      const path = join(dir, 'limited');
      await writeCheckpoint(path, files);
      const runtime = await referenceRuntime();
      await expect(loadModel(path, { runtime, maxBytes: 100_000 })).rejects.toSatisfy(
        code('E_FORMAT', /limited\/model\.safetensors is \d+ bytes; the model\.safetensors may be at most 100000 bytes/),
      );
      runtime.dispose();
    });

    it('bad options', async () => {
      await expect(loadModel(files, { runtime: undefined as never })).rejects.toSatisfy(code('E_CONFIG', /needs options\.runtime/));
      const runtime = await referenceRuntime();
      await expect(loadModel(files, { runtime, maxBytes: -1 })).rejects.toSatisfy(code('E_CONFIG', /maxBytes must be a positive number/));
      await expect(loadModel(42 as never, { runtime })).rejects.toSatisfy(code('E_CONFIG', /expected a model source/));
      runtime.dispose();
    });
  });
});
