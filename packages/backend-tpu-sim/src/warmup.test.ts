import { describe, expect, it } from 'vitest';
import {
  type CompileSetup,
  calibrateCompileTime,
  compileSeconds,
  countCompiles,
  QWEN_2_5_3B_ONE_LAYER,
  REPORTED_WARMUP,
  SET_LORA_KINDS,
  servingTrace,
  warmupMapping,
} from './compile.js';
import { LLAMA_3_1_8B } from './estimate.js';
import { tokenPaddings } from './vllm.js';

const setup = (preset: string, maxLoras: number, bucketing = true, rank = 16): CompileSetup => ({
  options: { preset, flags: { bucketing } },
  maxLoras,
  rank,
  maxNumBatchedTokens: 2048,
  maxNumSeqs: 256,
});

describe('warm-up model', () => {
  it('warm-up mapping: min(tokens, max_num_seqs) requests round-robin over the dummy adapters', () => {
    expect(Array.from(warmupMapping(16, setup('all-on', 3)))).toEqual([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0]);
    const big = warmupMapping(2048, setup('all-on', 4));
    expect([big[0], big[7], big[8], big[16], big[24], big[32]]).toEqual([0, 0, 1, 2, 3, 0]); // 256 requests of 8 tokens
  });

  it('kernel programs: at most one per program kind and token padding at warm-up; set_lora programs = kinds × slots', () => {
    for (const preset of ['all-on', 'einsum']) {
      for (const n of [1, 4, 64]) {
        const c = countCompiles(LLAMA_3_1_8B, setup(preset, n), []);
        // 4 modules, shrink + expand per slice (qkv: 3 + 3, o: 1 + 1, gate_up: 2 + 2, down: 1 + 1) = 14 calls, fewer distinct shapes.
        expect(c.warmupKernels).toBeLessThanOrEqual(14 * tokenPaddings(2048).length);
        expect(c.setLora).toBe(SET_LORA_KINDS * n);
        expect(c.runtimeKernels).toBe(0);
      }
    }
  });

  it('warm-up kernel programs do not grow with max_loras; without bucketing a serving trace recompiles far more', () => {
    const trace = servingTrace(setup('all-on', 8), 30);
    for (const preset of ['all-on', 'einsum']) {
      const counts = [1, 2, 8, 64, 256].map((n) => countCompiles(LLAMA_3_1_8B, setup(preset, n), []).warmupKernels);
      expect(new Set(counts).size, preset).toBe(1);
      const on = countCompiles(LLAMA_3_1_8B, setup(preset, 8, true), trace);
      const off = countCompiles(LLAMA_3_1_8B, setup(preset, 8, false), trace);
      expect(off.runtimeKernels, preset).toBeGreaterThan(2 * on.runtimeKernels);
    }
    // The Pallas single-adapter no-mask programs are never traced by a multi-adapter warm-up: recompiles at runtime.
    expect(countCompiles(LLAMA_3_1_8B, setup('all-on', 8, true), trace).runtimeKernels).toBeGreaterThan(0);
    expect(countCompiles(LLAMA_3_1_8B, setup('einsum', 8, true), trace).runtimeKernels).toBe(0);
  });

  it('calibration: positive per-program costs that reproduce the reported 16 / 30 / 45 s within a second', () => {
    const cal = calibrateCompileTime((n) => setup('all-on', n, true, 8), QWEN_2_5_3B_ONE_LAYER);
    expect(cal.kernelSeconds).toBeGreaterThan(0);
    expect(cal.setLoraSeconds).toBeGreaterThan(0);
    cal.points.forEach((p, i) => {
      expect(p.reported).toBe(REPORTED_WARMUP[i]?.seconds);
      expect(Math.abs(p.fitted - p.reported)).toBeLessThan(1);
    });
    const c = { warmupKernels: 10, runtimeKernels: 3, setLora: 20 };
    expect(compileSeconds(c, cal)).toEqual({ warmup: 10 * cal.kernelSeconds + 20 * cal.setLoraSeconds, runtime: 3 * cal.kernelSeconds });
  });
});
