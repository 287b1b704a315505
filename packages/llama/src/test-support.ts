// Test helpers shared by the package's tests (not published: excluded in package.json "files").
import '@tensorflow/tfjs-backend-cpu';
import { createLoRA, createReferenceBackend, type LoRAAdapter, type LoRARuntime, loadPeftAdapter } from '@lora/core';
import * as tf from '@tensorflow/tfjs-core';
import { loadModel } from './checkpoint.js';
import type { ModelConfig } from './config.js';
import { type AdapterSpec, adapterFiles } from './fixture-adapters.js';
import { buildCheckpoint, type Checkpoint, type CheckpointSpec } from './fixtures.js';
import type { CausalLM } from './model.js';

tf.env().set('IS_TEST', true);

/**
 * Relative error of one logits row: max |got − ref| over the row, divided by the root mean square
 * of the reference row (not by the root sum of squares, which would grow with the vocabulary and
 * hide errors).
 */
export function rowError(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  let max = 0;
  let ss = 0;
  for (let i = 0; i < ref.length; i++) {
    max = Math.max(max, Math.abs((got[i] as number) - (ref[i] as number)));
    ss += (ref[i] as number) ** 2;
  }
  return max / Math.sqrt(ss / ref.length || 1);
}

/** Adapters for the mixed batches: every module (embedding and lm_head included) with rsLoRA; a BF16 one on a few; DoRA on every module. */
const TEST_ADAPTERS: readonly AdapterSpec[] = [
  {
    id: 'all-rslora',
    rank: 4,
    alpha: 8,
    rslora: true,
    targets: ['embed_tokens', 'q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj', 'lm_head'],
  },
  { id: 'attn-head-bf16', rank: 2, alpha: 4, targets: ['q_proj', 'v_proj', 'o_proj', 'down_proj', 'lm_head'], dtype: 'BF16' },
  {
    id: 'dora-r4',
    rank: 4,
    alpha: 8,
    dora: true,
    targets: ['embed_tokens', 'q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj', 'lm_head'],
  },
];

export function testAdapters(config: ModelConfig): LoRAAdapter[] {
  return TEST_ADAPTERS.map((spec, i) => loadPeftAdapter({ id: spec.id, ...adapterFiles(config, spec, 100 + i) }));
}

/**
 * The float64 reference kernels; `weightLayout: 'in-out'` makes it ask for `[H, O]` base weights as
 * the CPU backend does (tfjs-wasm's XNNPACK path), so both layouts of the model are tested.
 */
export async function referenceRuntime(maxLoras = 2, weightLayout: 'out-in' | 'in-out' = 'out-in'): Promise<LoRARuntime> {
  const backend = weightLayout === 'in-out' ? { ...createReferenceBackend(), weightLayout } : 'reference';
  return createLoRA({ backend, maxLoras, maxLoraRank: 8, maxCpuLoras: 4 });
}

export interface Loaded {
  checkpoint: Checkpoint;
  runtime: LoRARuntime;
  model: CausalLM;
  dispose(): void;
}

/** A checkpoint built from a spec, loaded from its in-memory files on a reference runtime. */
export async function loadSpec(spec: CheckpointSpec, weightLayout: 'out-in' | 'in-out' = 'out-in', maxLoras = 2): Promise<Loaded> {
  const checkpoint = buildCheckpoint(spec);
  const runtime = await referenceRuntime(maxLoras, weightLayout);
  const { model } = await loadModel(checkpoint.files, { runtime });
  return {
    checkpoint,
    runtime,
    model,
    dispose() {
      model.dispose();
      runtime.dispose();
    },
  };
}

/**
 * An in-memory Cache Storage (what browsers give as `caches`): the stored bodies by key, and the
 * cache names opened. Like the real one, each `match` answers a new Response (not a clone of one
 * kept unread: cancelling a tee'd clone's body would wait for the other branch for ever).
 */
export function fakeCacheStorage(): { storage: CacheStorage; stored: Map<string, Uint8Array>; names: string[] } {
  const stored = new Map<string, Uint8Array>();
  const headers = new Map<string, Headers>();
  const names: string[] = [];
  const storage = {
    async open(name: string) {
      names.push(name);
      return {
        async match(key: string) {
          const body = stored.get(key);
          return body === undefined ? undefined : new Response(body.slice(), { headers: headers.get(key) });
        },
        async put(key: string, res: Response) {
          stored.set(key, new Uint8Array(await res.arrayBuffer()));
          headers.set(key, res.headers);
        },
      };
    },
  } as unknown as CacheStorage;
  return { storage, stored, names };
}
