import { createLoRA, type LoRABackend, LoRAError, type LoRAErrorCode, type LoRARuntime, type ReferenceResult, reference } from '@lora/core';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'vitest';

// Silences tfjs' "install tfjs-node" banner in test output; no behaviour changes with it.
tf.env().set('IS_TEST', true);

export type BackendFactory = () => LoRABackend | Promise<LoRABackend>;

/** What a backend declares about itself; the suite adapts instead of being copied per backend. */
export interface BackendCapabilities {
  /** Title of the describe block. */
  name: string;
  /** Max per-row error relative to the root-sum-square of the row's products (docs/contract.md "Accuracy"). Default 1e-4. */
  tolerance?: number;
  /** Case names this backend is allowed to skip, with the reason (an allow list, like tfjs op tests). */
  skip?: Readonly<Record<string, string>>;
  /** Batches in the leak test (default 1000). */
  leakBatches?: number;
  /** Per-test timeout in ms for slow (software-rendered) backends. Default 60 000. */
  timeoutMs?: number;
  /**
   * GPU backends: the most programs a random serving trace may compile (checked through
   * `stats().programsCompiled`). Leave out where nothing is compiled.
   */
  maxPrograms?: number;
  /**
   * How the tfjs backend's `memory().numBytesInGPU` moves: 'exact' (the default; webgl releases a
   * texture when its tensor is disposed, so the leak test checks that GPU memory in use stays
   * flat) or 'deferred' (tfjs-webgpu releases buffers in batches after queue submits, so the count
   * swings by tens of KB between identical batches and only tensors and bytes are checked).
   */
  gpuMemory?: 'exact' | 'deferred';
  /**
   * Steps of the hostile-session property suite (default 20,000; `LORA_HOSTILE_STEPS` overrides it
   * for a thorough run). Node only: browser projects skip it.
   */
  hostileSteps?: number;
}

export const DEFAULT_TOLERANCE = 1e-4;

/** Suites that need Node (files, long property runs) skip themselves in the browser projects. */
export const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';

export interface RuntimeShape {
  maxLoras: number;
  maxLoraRank: number;
  maxCpuLoras?: number;
  maxCpuLoraBytes?: number;
  maxNumTokens?: number;
}

export async function makeRuntime(factory: BackendFactory, shape: RuntimeShape): Promise<LoRARuntime> {
  return createLoRA({ backend: await factory(), ...shape });
}

/** One `[L, d1, d2]` stack per entry of `dims`, with its data kept for the reference. */
export function stacks(data: Float32Array[], dims: Array<[number, number, number]>): tf.Tensor3D[] {
  return data.map((d, s) => tf.tensor3d(d, dims[s] as [number, number, number]));
}

/** A result's values, read once (awaiting the backend's queue), and the tensor disposed. */
export async function readOnce(t: tf.Tensor): Promise<Float32Array> {
  try {
    return (await t.data()) as Float32Array;
  } finally {
    t.dispose();
  }
}

export function expectAccurate(actual: Float32Array, ref: ReferenceResult, tolerance: number, label: string): void {
  const err = reference.maxRelativeRowError(actual, ref);
  expect(err, `${label}: max row error ${err.toExponential(3)} exceeds ${tolerance}`).toBeLessThanOrEqual(tolerance);
}

/** Columns outside `[from, to)` must be bit-identical to y in every row. */
export function expectColumnsUntouched(
  actual: Float32Array,
  y: Float32Array,
  width: number,
  from: number,
  to: number,
  label: string,
): void {
  const rows = y.length / width;
  for (let t = 0; t < rows; t++) {
    for (let c = 0; c < width; c++) {
      if (c >= from && c < to) continue;
      const i = t * width + c;
      if (!Object.is(actual[i], y[i])) {
        expect.fail(`${label}: y[${t}, ${c}] must be unchanged (${y[i]}), got ${actual[i]}`);
      }
    }
  }
}

/** The call must not mutate or dispose what it was given. (Async reads: GPU backends have no sync readback in Node.) */
export async function expectUnchanged(tensor: tf.Tensor, data: Float32Array, label: string): Promise<void> {
  expect(tensor.isDisposed, `${label} was disposed by the call`).toBe(false);
  const now = (await tensor.data()) as Float32Array;
  // Bit patterns, not values: -0 vs 0 and NaN payloads count as changes. (No Buffer: also runs in browsers.)
  const a = new Uint32Array(now.buffer, now.byteOffset, now.length);
  const b = new Uint32Array(data.buffer, data.byteOffset, data.length);
  expect(a.length === b.length && a.every((v, i) => v === b[i]), `${label} was mutated`).toBe(true);
}

/**
 * Waits until the backend has run everything queued so far. GPU backends queue work and return at
 * once; a test that never reads back (a leak test, say) would hand its queued work to the next
 * test's first read — on SwiftShader minutes of it, charged to the wrong test. A read of a tensor
 * a GPU program wrote resolves only after all earlier work (the queue runs in order).
 */
export async function drainQueue(): Promise<void> {
  if (tf.engine().backendNames().length === 0) return; // nothing ran yet (a skipped first test)
  const product = tf.tidy(() => tf.matMul(tf.ones([1, 1]), tf.ones([1, 1])));
  try {
    await product.data();
  } finally {
    product.dispose();
  }
}

export const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);

/**
 * Allow-list entries every GPU backend on tfjs shares (data, not a backend's name, decides):
 * token ids live on the device, and tfjs' own GPU programs (the base model's matmuls) are chosen
 * by batch shape.
 */
export const GPU_SKIPS: Readonly<Record<string, string>> = Object.freeze({
  'token id outside the vocabulary': 'token ids are not read back from the GPU to be range-checked',
  'bit-identical logits':
    "tfjs' GPU backends pick the base model's matmul programs by batch shape, so logits can differ in the last bit between batches; the Engine test checks that tokens do not",
});

/** Runs `fn` and checks that it throws a {@link LoRAError} with `code` whose message matches `mentions`. */
export function expectLoRAError(fn: () => unknown, code: LoRAErrorCode, mentions?: RegExp): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown, `expected LoRAError ${code}`).toBeInstanceOf(LoRAError);
  expect((thrown as LoRAError).code).toBe(code);
  if (mentions) expect((thrown as LoRAError).message).toMatch(mentions);
}
