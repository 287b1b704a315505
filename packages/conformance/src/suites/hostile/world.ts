import {
  type LoRAAdapter,
  LoRAEmbedding,
  type LoRALinear,
  type LoRARuntime,
  loadPeftAdapter,
  type MergedLoRALinear,
  type PeftFiles,
} from '@lora/core';
import { adapterFiles, type ModelConfig, moduleSpecs } from '@lora/llama';
import * as tf from '@tensorflow/tfjs-core';
import { buildTinyLlama, type TinyLlama, tinyLlamaConfig } from '../../fixtures/tiny-llama.js';
import type { BackendFactory } from '../../harness.js';
import { makeRuntime } from '../../harness.js';
import { Random } from '../../random.js';
import { type Limits, ManagerModel } from './model.js';

/** One layer of the model under test, with what the checks need to know about it. */
export interface WorldLayer {
  readonly name: string;
  readonly layer: LoRALinear | MergedLoRALinear | LoRAEmbedding;
  readonly kind: 'linear' | 'embedding' | 'logits';
  readonly inFeatures: number;
  readonly outputs: readonly number[];
  /** Base weight `[O, H]` (embedding: the `[V, D]` table), row-major, slices stacked. */
  readonly weight: Float32Array;
}

/**
 * The pool's adapters take 880 to 7040 bytes (ranks 1 to 8): 8000 bytes lets the byte budget, not
 * only the count, decide evictions (the rank-8 adapter leaves room for one rank-1 adapter).
 */
export const LIMITS: Limits = { maxLoras: 3, maxLoraRank: 8, maxCpuLoras: 4, maxCpuLoraBytes: 8000, maxNumTokens: 24 };
const MODEL: ModelConfig = tinyLlamaConfig({ numHiddenLayers: 1 });

/** The runtime, a one-layer tiny Llama on it, adapters to register and the model that predicts it all. */
export interface World {
  readonly rt: LoRARuntime;
  readonly model: ManagerModel;
  readonly layers: readonly WorldLayer[];
  /** Valid adapters (ranks ≤ maxLoraRank, different targets) and their PEFT files. */
  readonly pool: readonly LoRAAdapter[];
  readonly files: readonly PeftFiles[];
  readonly rng: Random;
  /** Tensors alive when every stack is materialised and nothing else is held. */
  baseline: number;
  dispose(): void;
}

export async function createWorld(factory: BackendFactory): Promise<World> {
  const rt = await makeRuntime(factory, LIMITS);
  const rng = new Random(2024);
  const tiny: TinyLlama = buildTinyLlama(rt, rng, MODEL);
  const linear = (layer: LoRALinear | MergedLoRALinear, kind: 'linear' | 'logits'): WorldLayer => ({
    name: layer.modules.join('+'),
    layer,
    kind,
    inFeatures: (layer.sliceShapes[0] as { inFeatures: number }).inFeatures,
    outputs: layer.sliceShapes.map((s) => s.outFeatures),
    weight: tiny.weightOf(layer),
  });
  // Same order as the runtime's layer list (construction order), which is the order the model keeps.
  const layers: WorldLayer[] = [
    {
      name: 'model.embed_tokens',
      layer: tiny.embed,
      kind: 'embedding',
      inFeatures: MODEL.vocabSize,
      outputs: [MODEL.hiddenSize],
      weight: tiny.weightOf(tiny.embed),
    },
    linear(tiny.qkv[0] as MergedLoRALinear, 'linear'),
    linear(tiny.o[0] as LoRALinear, 'linear'),
    linear(tiny.gateUp[0] as MergedLoRALinear, 'linear'),
    linear(tiny.down[0] as LoRALinear, 'linear'),
    linear(tiny.lmHead, 'logits'),
  ];
  const shorts = [...new Set(moduleSpecs(MODEL).map((m) => m.short))];
  const files: PeftFiles[] = [];
  const pool: LoRAAdapter[] = [];
  for (let i = 0; i < 6; i++) {
    const targets = shorts.filter((_, j) => (i + j) % 3 !== 0);
    const spec = {
      id: `a${i}`,
      rank: [1, 2, 4, 8][i % 4] as number,
      alpha: 3 + i,
      targets,
      rslora: i % 2 === 1,
      dtype: i % 3 === 0 ? ('BF16' as const) : ('F32' as const),
    };
    const f = adapterFiles(MODEL, spec, rng.seed());
    files.push(f);
    pool.push(loadPeftAdapter({ id: spec.id, ...f }));
  }
  const model = new ManagerModel(
    LIMITS,
    layers.map((l) => ({ modules: l.layer.modules })),
  );
  const world: World = {
    rt,
    model,
    layers,
    pool,
    files,
    rng,
    baseline: 0,
    dispose() {
      tiny.dispose();
      rt.dispose();
    },
  };
  world.baseline = liveTensors(world);
  return world;
}

/** Tensors alive once every slot stack is on the device, minus what the backend declares it holds on purpose. */
export function liveTensors(world: World): number {
  for (const { layer } of world.layers) {
    void layer.loraA;
    void layer.loraB;
  }
  const held = world.rt.backend.stats?.().tensorsHeld ?? 0;
  return tf.memory().numTensors - held;
}

/** Back to an empty runtime (nothing registered, no batch, zero slots) and an empty model. */
export function resetWorld(world: World): void {
  const { rt } = world;
  for (const id of rt.adapters.registered) rt.adapters.unpin(id);
  rt.adapters.setBatch([], []);
  for (const id of rt.adapters.registered) rt.adapters.remove(id);
  for (const { layer } of world.layers) for (let s = 0; s < LIMITS.maxLoras; s++) layer.resetLoRA(s);
  world.model.clear();
  world.model.setBatch([], [], false);
}

export function isEmbedding(layer: WorldLayer['layer']): layer is LoRAEmbedding {
  return layer instanceof LoRAEmbedding;
}
