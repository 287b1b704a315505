import { computeMapping } from '@lora/core/backend';
import type { LlamaShape } from './estimate.js';
import { priceLayer } from './estimate.js';
import { resolveTpuSimOptions } from './options.js';
import { TpuSim } from './sim.js';
import { tokenPaddings } from './vllm.js';

/**
 * The warm-up problem reported in the PR 15655 thread: compile time grows with the number of LoRAs
 * (16 s / 30 s / 45 s for 1 / 2 / 3 LoRAs on a one-layer Qwen2.5-3B). Two sources of programs:
 *
 * 1. Kernel programs, counted from the simulator's own program cache: static signatures (grid,
 *    blocks, padded shapes, statics) of every shrink/expand vLLM's TPU runner traces. Warm-up
 *    (`capture_model` → `_dummy_run(num_tokens)` for every token padding, with the LoRA dummy
 *    mapping of `maybe_dummy_run_with_lora`: requests assigned round-robin to the `max_loras` dummy
 *    adapters) plus what a serving trace compiles afterwards (shapes the warm-up missed: the
 *    single-adapter no-mask programs, and without the bucketing flag every new token count).
 * 2. Adapter-loading programs: the TPU runner's `set_lora` is traced with the slot index as a
 *    Python int, a static of the graph ("The integer index leads to a recompilation": vllm/v1/worker/
 *    tpu_model_runner.py `replace_set_lora`), so every (LoRA module kind, slot) pair is its own
 *    program. Graphs of identical structure (the same module kind on another layer) hit
 *    torch_xla's graph cache, so it is kinds × slots, not layers × slots.
 *
 * Compile time = c_k · kernel programs + c_s · set_lora programs. c_k and c_s are the only
 * calibrated numbers in the package: a least-squares fit of the three reported warm-up times to the
 * counts this model gives for that run (one-layer Qwen2.5-3B, `max_lora_rank` 8 as in the PR's
 * tests/tpu/test_lora.py, the Pallas kernels of the PR, the LLM-class token budget). The fit absorbs
 * whatever else the warm-up compiled (the base model's graphs) into c_k.
 */

/** The reported warm-up times (PR 15655 thread, as quoted in issue #21). */
export const REPORTED_WARMUP: readonly {
  /** LoRAs of the run (`max_loras`). */
  loras: number;
  /** Reported warm-up time, seconds. */
  seconds: number;
}[] = Object.freeze([
  { loras: 1, seconds: 16 },
  { loras: 2, seconds: 30 },
  { loras: 3, seconds: 45 },
]);

/** Qwen2.5-3B with one layer (Qwen/Qwen2.5-3B config.json: hidden 2048, 16 heads and 2 KV heads of 128, intermediate 11008, vocab 151936). */
export const QWEN_2_5_3B_ONE_LAYER: LlamaShape = {
  name: 'Qwen2.5-3B (1 layer)',
  hidden: 2048,
  q: 2048,
  kv: 256,
  intermediate: 11008,
  layers: 1,
  vocab: 151936,
  tp: 1,
};

/** LoRA-wrapped module kinds with distinct shapes (embedding, qkv, o, gate_up, down; logits LoRA disabled in PR 15655). */
export const SET_LORA_KINDS = 5;

/** A configuration whose compiles are counted: the backend's options and the vLLM settings that fix the static shapes. */
export interface CompileSetup {
  /** `backendOptions` of the tpu-sim backend (preset, flags). */
  readonly options: Readonly<Record<string, unknown>>;
  /** `max_loras`: slots in every stack, the warm-up's dummy adapters and the `set_lora` slots. */
  readonly maxLoras: number;
  /** `max_lora_rank`: the stacks' rank. */
  readonly rank: number;
  /** `max_num_batched_tokens`: the largest token padding warmed up, and the prefill size cap of the serving trace. */
  readonly maxNumBatchedTokens: number;
  /** `max_num_seqs`: caps the warm-up's dummy requests and the decode batches of the serving trace. */
  readonly maxNumSeqs: number;
}

/** Programs one configuration compiles, split as the compile-time model prices them. */
export interface CompileCounts {
  /** Kernel programs compiled by the warm-up. */
  readonly warmupKernels: number;
  /** Kernel programs first seen while serving the trace (recompiles after warm-up). */
  readonly runtimeKernels: number;
  /** set_lora programs: module kinds × slots. */
  readonly setLora: number;
}

/** Small deterministic PRNG (mulberry32) for the serving trace. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A serving trace: `batches` steps alternating decode batches (1 token for each of 1–max_num_seqs
 * requests) and prefill-heavy batches (up to the token budget), each on one adapter or spread over
 * 1–max_loras adapters.
 */
export function servingTrace(setup: CompileSetup, batches = 60, seed = 15655): Int32Array[] {
  const rand = prng(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const out: Int32Array[] = [];
  for (let b = 0; b < batches; b++) {
    const decode = b % 2 === 0;
    const tokens = decode ? int(1, setup.maxNumSeqs) : int(1, setup.maxNumBatchedTokens);
    const spread = rand() < 0.5 ? 1 : int(1, setup.maxLoras);
    const first = int(0, setup.maxLoras - 1);
    const perReq = decode ? 1 : Math.max(1, int(1, tokens));
    out.push(Int32Array.from({ length: tokens }, (_, t) => (first + Math.floor(t / perReq)) % spread));
  }
  return out;
}

/** The dummy LoRA mapping of a warm-up run with `tokens` tokens: min(tokens, max_num_seqs) requests round-robin over the slots. */
export function warmupMapping(tokens: number, setup: CompileSetup): Int32Array {
  const reqs = Math.min(tokens, setup.maxNumSeqs);
  const perReq = Math.ceil(tokens / reqs);
  return Int32Array.from({ length: tokens }, (_, t) => Math.floor(t / perReq) % setup.maxLoras);
}

/** Kernel programs of one model's LoRA modules (one layer: every layer shares its shapes) over warm-up and a trace. */
export function countCompiles(m: LlamaShape, setup: CompileSetup, trace: readonly Int32Array[] = servingTrace(setup)): CompileCounts {
  const sim = new TpuSim(resolveTpuSimOptions(setup.options), { compileOnly: true });
  const stack = { adapters: setup.maxLoras, rank: setup.rank };
  const maxNumTokens = tokenPaddings(setup.maxNumBatchedTokens).at(-1) as number;
  const run = (slots: Int32Array) => {
    const meta = computeMapping(slots, { maxLoras: setup.maxLoras, maxNumTokens });
    if (!meta.noLoRA) priceLayer(sim, m, meta, stack);
  };
  for (const T of tokenPaddings(setup.maxNumBatchedTokens)) run(warmupMapping(T, setup));
  const warmupKernels = sim.cache.compiled;
  for (const slots of trace) run(slots);
  return { warmupKernels, runtimeKernels: sim.cache.compiled - warmupKernels, setLora: SET_LORA_KINDS * setup.maxLoras };
}

/** The fitted compile-time model: seconds per program of each kind, and how it reproduces {@link REPORTED_WARMUP}. */
export interface CompileCalibration {
  /** Seconds per kernel program. */
  readonly kernelSeconds: number;
  /** Seconds per set_lora program. */
  readonly setLoraSeconds: number;
  /** The counts the fit used, per reported point, and the fitted times. */
  readonly points: readonly {
    /** `max_loras` of the reported run. */
    loras: number;
    /** Reported warm-up, seconds. */
    reported: number;
    /** Warm-up kernel programs counted for that run. */
    kernels: number;
    /** `set_lora` programs of that run. */
    setLora: number;
    /** Warm-up seconds the fit predicts. */
    fitted: number;
  }[];
}

/** Least-squares fit of seconds = c_k · warm-up kernel programs + c_s · set_lora programs to the reported warm-ups. */
export function calibrateCompileTime(setupFor: (loras: number) => CompileSetup, m = QWEN_2_5_3B_ONE_LAYER): CompileCalibration {
  const rows = REPORTED_WARMUP.map((p) => {
    const c = countCompiles(m, setupFor(p.loras), []);
    return { loras: p.loras, reported: p.seconds, kernels: c.warmupKernels, setLora: c.setLora };
  });
  // Normal equations for two unknowns.
  let skk = 0;
  let sks = 0;
  let sss = 0;
  let skt = 0;
  let sst = 0;
  for (const r of rows) {
    skk += r.kernels * r.kernels;
    sks += r.kernels * r.setLora;
    sss += r.setLora * r.setLora;
    skt += r.kernels * r.reported;
    sst += r.setLora * r.reported;
  }
  const det = skk * sss - sks * sks;
  if (Math.abs(det) < 1e-9) throw new Error('compile calibration: kernel and set_lora counts are collinear');
  const kernelSeconds = (skt * sss - sst * sks) / det;
  const setLoraSeconds = (skk * sst - sks * skt) / det;
  return {
    kernelSeconds,
    setLoraSeconds,
    points: rows.map((r) => ({ ...r, fitted: kernelSeconds * r.kernels + setLoraSeconds * r.setLora })),
  };
}

/** Predicted compile seconds for counts under a calibration (warm-up and runtime recompiles alike). */
export function compileSeconds(
  c: CompileCounts,
  cal: CompileCalibration,
): {
  /** Warm-up compile time: warm-up kernel programs plus `set_lora` programs, seconds. */
  warmup: number;
  /** Recompiles while serving the trace (runtime kernel programs), seconds. */
  runtime: number;
} {
  return {
    warmup: cal.kernelSeconds * c.warmupKernels + cal.setLoraSeconds * c.setLora,
    runtime: cal.kernelSeconds * c.runtimeKernels,
  };
}
