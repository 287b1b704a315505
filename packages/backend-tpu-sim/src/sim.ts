import type { LoRAMapping } from '@lora/core';
import { addOp, type CostTotals, emptyTotals, kernelCost, type OpCost, xlaCost } from './cost.js';
import { einsumKernel } from './kernels/einsum.js';
import { packLanesIn, packLanesOut, padRows, padStack, routeTokens, scatterLanes } from './kernels/layout.js';
import { type LoraMatmulSpec, loraMatmulKernel, type MaskMode } from './kernels/lora-matmul.js';
import { type DimPlan, featureBlock, type Lanes, laneLayout, planTokens, rankDim, type TokenPlan, untunedDim } from './kernels/plan.js';
import type { ResolvedTpuSimOptions } from './options.js';
import { bytesOf, type HbmArray, hbmArray, virtualArray } from './pallas/arrays.js';
import { type KernelDef, ProgramCache } from './pallas/interpreter.js';

/** What `stats()` reports: cost totals since the backend was created, and compiles. */
export interface TpuSimStats extends CostTotals {
  [counter: string]: number;
  /** Distinct kernel programs compiled (one per new static signature); bounded by core's token buckets when bucketing is on. */
  programsCompiled: number;
  /** Largest VMEM footprint of any kernel run, bytes: double-buffered input and output blocks plus scratch. */
  vmemPeakBytes: number;
  /** Kernel runs whose footprint exceeded the chip's VMEM: programs a real TPU would refuse to compile. */
  vmemOverflows: number;
}

/** Operands of one shrink call on typed arrays, as the `LoRATpuSimShrink` tfjs kernel reads them (T = `meta.numTokens`). */
export interface SimShrinkArgs {
  /** `[T, H]` float32. */
  readonly x: Float32Array;
  /** H: input features per token, the shrink's contraction width. */
  readonly hidden: number;
  /** One `[L, R, H]` stack per slice. */
  readonly loraA: readonly Float32Array[];
  /** L: adapter slots per stack (`maxLoras`); the simulator appends a zero slot, index L, for tokens without an adapter. */
  readonly slots: number;
  /** R: the stacks' rank, the width of each slice's output. */
  readonly rank: number;
  /** The batch's token→slot mapping (-1: no adapter), with the token bucket and active slots the kernels plan from. */
  readonly meta: LoRAMapping;
  /** Factor applied to every output element after the kernel. */
  readonly scale: number;
}

/** Operands of one expand call on typed arrays, as the `LoRATpuSimExpand` tfjs kernel reads them (T = `meta.numTokens`). */
export interface SimExpandArgs {
  /** `[T, width]` float32. */
  readonly y: Float32Array;
  /** Columns per row of `y`. */
  readonly width: number;
  /** `[S, T, R]` float32. */
  readonly x: Float32Array;
  /** One `[L, O_s, R]` stack per slice. */
  readonly loraB: readonly Float32Array[];
  /** L: adapter slots per stack (`maxLoras`); the simulator appends a zero slot, index L, for tokens without an adapter. */
  readonly slots: number;
  /** R: the stacks' rank, the expand's contraction width. */
  readonly rank: number;
  /** O_s: output columns of each slice; slice s lands right after slice s − 1 in `y`. */
  readonly outputSlices: readonly number[];
  /** Column of `y` where slice 0 starts. */
  readonly offsetStart: number;
  /** true: add the products into `y`'s columns; false: overwrite them. Tokens without an adapter keep `y` either way. */
  readonly addInputs: boolean;
  /** The batch's token→slot mapping (-1: no adapter), with the token bucket and active slots the kernels plan from. */
  readonly meta: LoRAMapping;
}

/**
 * One simulated TPU: a program cache, running cost totals and the shrink/expand entry points on
 * typed arrays (the tfjs kernels in register.ts wrap these). Each call plans static shapes from
 * the flags, lays the operands out as vLLM PR 15655 does (bf16, padded, zero slot, lanes), runs the
 * Pallas program (or the einsum) in the interpreter and records what every op cost.
 */
export class TpuSim {
  /** Variant, flags, chip and per-step overhead, fixed for the simulator's lifetime. */
  readonly options: ResolvedTpuSimOptions;
  /** This device's compile cache: one program per static signature, counting compiles. */
  readonly cache: ProgramCache;
  /** Cost totals over every call since construction: the basis of `stats()`. */
  readonly totals: CostTotals = emptyTotals();
  /** Largest VMEM footprint of any kernel run so far, bytes (double-buffered blocks plus scratch). */
  vmemPeakBytes = 0;
  /** Kernel runs whose blocks (double-buffered) and scratch would not fit the chip's VMEM. */
  vmemOverflows = 0;
  /** Ops of the most recent call, in launch order. */
  lastCall: OpCost[] = [];

  /** Cost-only: arrays have shapes but no data, kernels account bytes and FLOPs and skip arithmetic. */
  readonly costOnly: boolean;
  /**
   * Compile-only (implies cost-only): programs are compiled (counted in the cache) but not run, so
   * nothing is priced. For counting the programs a trace of shapes compiles, quickly.
   */
  readonly compileOnly: boolean;

  constructor(options: ResolvedTpuSimOptions, mode: { costOnly?: boolean; compileOnly?: boolean } = {}) {
    this.options = options;
    this.cache = new ProgramCache(options.chip.mxu);
    this.compileOnly = mode.compileOnly ?? false;
    this.costOnly = this.compileOnly || (mode.costOnly ?? false);
  }

  /** `[S, T, R]`: `scale · A_s[slot(t)] · x[t]`, zeros for -1 tokens. */
  shrink(a: SimShrinkArgs): Float32Array {
    const { meta, hidden: H, rank: R, slots: L } = a;
    const T = meta.numTokens;
    const S = a.loraA.length;
    const result = new Float32Array(S * T * R);
    const ops = this.#begin();
    const slots = meta.tokenLoraIndices;
    const useful = 2 * R * H * meta.numLoRATokens;

    if (this.options.variant === 'einsum') {
      const tokens = this.#einsumTokens(meta);
      const idx = routeTokens(slots, tokens, L);
      const x = this.#padRows(a.x, T, H, H, tokens, H);
      ops.push(this.#xla('cast x to bf16', T * H * 4 + bytesOf(x.shape, 'bf16')));
      a.loraA.forEach((stack, s) => {
        const w = this.#padStack(stack, L, R, H, R, H, false);
        const out = this.#run(
          einsumKernel({ name: 'einsum-shrink', tokens, slots: L + 1, out: R, contraction: H, mxu: this.#mxu }),
          [idx],
          [x, w],
          'xla',
        );
        this.#gatherShrink(result, out, slots, s, R, () => 0, a.scale);
        ops.push(this.#xla('scale shrink output', 2 * T * R * 4));
      });
      this.#end(ops, S * useful);
      return result;
    }

    const f = this.options.flags;
    const tokens = planTokens(T, meta.tokenBucket, f);
    const single = f.singleNoMask && meta.singleLoRA;
    const contraction = f.blockTuning ? featureBlock(H) : untunedDim(H);
    const x = this.#padRows(a.x, T, H, H, tokens.padded, contraction.padded);
    ops.push(this.#xla('cast and pad x to bf16', T * H * 4 + bytesOf(x.shape, 'bf16')));
    const lanes = f.laning ? laneLayout(R, L + 1) : undefined;
    const slot0 = meta.activeSlots[0] ?? 0;
    let out: DimPlan;
    let column: (t: number) => number;
    let prefetch1: Int32Array | undefined;
    if (lanes) {
      out = single ? { padded: lanes.width, block: lanes.width } : { padded: lanes.groups * lanes.width, block: lanes.width };
      const laneCol = (n: number) => (single ? 0 : Math.floor(n / lanes.lanes) * lanes.width) + (n % lanes.lanes) * lanes.rank;
      column = (t) => laneCol(slots[t] as number);
      prefetch1 = Int32Array.of(Math.floor(slot0 / lanes.lanes), (slot0 % lanes.lanes) * lanes.rank);
    } else {
      out = f.blockTuning ? rankDim(R) : untunedDim(R);
      column = () => 0;
      prefetch1 = Int32Array.of(slot0, 0);
    }
    const idx = routeTokens(slots, tokens.padded, L);
    a.loraA.forEach((stack, s) => {
      const w = lanes
        ? this.#packLanesOut(stack, L, R, H, lanes, contraction.padded)
        : this.#padStack(stack, L, R, H, out.padded, contraction.padded, false);
      const spec = this.#spec(
        f.splitShrinkExpand ? 'shrink' : 'bgmv',
        tokens,
        out,
        contraction,
        w,
        'nt',
        lanes ? 'out' : 'none',
        lanes,
        R,
        single,
        L,
      );
      const kernelOut = this.#run(loraMatmulKernel(spec), single ? [idx, prefetch1!] : [idx], [x, w], 'pallas');
      this.#gatherShrink(result, kernelOut, slots, s, R, column, a.scale);
      ops.push(this.#xla(lanes ? 'gather lanes and scale' : 'slice and scale', 2 * T * R * 4));
    });
    this.#end(ops, S * useful);
    return result;
  }

  /** y with slice s of `B_s[slot(t)] · x[s, t]` written or added at its columns; -1 tokens unchanged. */
  expand(a: SimExpandArgs): Float32Array {
    const { meta, rank: R, slots: L, width: W } = a;
    const T = meta.numTokens;
    const result = a.y.slice();
    const ops = this.#begin();
    const slots = meta.tokenLoraIndices;
    const f = this.options.flags;
    let col0 = a.offsetStart;
    let useful = 0;
    a.loraB.forEach((stack, s) => {
      const O = a.outputSlices[s] as number;
      const xs = a.x.subarray(s * T * R, (s + 1) * T * R);
      useful += 2 * R * O * meta.numLoRATokens;
      let kernelOut: HbmArray;
      if (this.options.variant === 'einsum') {
        const tokens = this.#einsumTokens(meta);
        const x = this.#padRows(xs, T, R, R, tokens, R);
        ops.push(this.#xla('cast shrink output to bf16', T * R * 4 + bytesOf(x.shape, 'bf16')));
        const w = this.#padStack(stack, L, O, R, O, R, false);
        const spec = einsumKernel({ name: 'einsum-expand', tokens, slots: L + 1, out: O, contraction: R, mxu: this.#mxu });
        kernelOut = this.#run(spec, [routeTokens(slots, tokens, L)], [x, w], 'xla');
      } else {
        const tokens = planTokens(T, meta.tokenBucket, f);
        const single = f.singleNoMask && meta.singleLoRA;
        const split = f.splitShrinkExpand;
        // Split: expand gets its own blocks (wide output blocks, 256-deep rank) and [N, r, O] weights.
        const out = !f.blockTuning ? untunedDim(O) : split ? featureBlock(O) : rankDim(O);
        const layout = split ? 'nn' : 'nt';
        if (split && !f.preTransposedExpand) ops.push(this.#xla('transpose expand weights', 2 * (L + 1) * O * R * 2));
        const lanes = f.laning ? laneLayout(R, L + 1) : undefined;
        const slot0 = meta.activeSlots[0] ?? 0;
        let contraction: DimPlan;
        let x: HbmArray;
        let w: HbmArray;
        let prefetch1: Int32Array;
        if (lanes) {
          contraction = single ? { padded: lanes.width, block: lanes.width } : { padded: lanes.groups * lanes.width, block: lanes.width };
          x = this.#scatterLanes(xs, slots, R, lanes, tokens.padded, single);
          w = this.#packLanesIn(stack, L, O, R, lanes, out.padded, layout);
          prefetch1 = Int32Array.of(Math.floor(slot0 / lanes.lanes), (slot0 % lanes.lanes) * lanes.rank);
        } else {
          contraction = !f.blockTuning ? untunedDim(R) : split ? rankDim(R) : featureBlock(R);
          x = this.#padRows(xs, T, R, R, tokens.padded, contraction.padded);
          w = this.#padStack(stack, L, O, R, out.padded, contraction.padded, layout === 'nn');
          prefetch1 = Int32Array.of(slot0, 0);
        }
        ops.push(this.#xla(lanes ? 'scatter into lanes' : 'cast and pad shrink output', T * R * 4 + bytesOf(x.shape, 'bf16')));
        const spec = this.#spec(split ? 'expand' : 'bgmv', tokens, out, contraction, w, layout, lanes ? 'in' : 'none', lanes, R, single, L);
        kernelOut = this.#run(
          loraMatmulKernel(spec),
          single ? [routeTokens(slots, tokens.padded, L), prefetch1] : [routeTokens(slots, tokens.padded, L)],
          [x, w],
          'pallas',
        );
      }
      // Epilogue (an XLA op): add into (or write) y's columns of this slice, -1 tokens keep y.
      const k = kernelOut.data;
      const kCols = kernelOut.shape[1] as number;
      for (let t = 0; t < (this.costOnly ? 0 : T); t++) {
        if ((slots[t] as number) < 0) continue;
        const yo = t * W + col0;
        const ko = t * kCols;
        for (let o = 0; o < O; o++)
          result[yo + o] = a.addInputs ? (result[yo + o] as number) + (k[ko + o] as number) : (k[ko + o] as number);
      }
      ops.push(this.#xla(a.addInputs ? 'add into y' : 'write into y', (a.addInputs ? 3 : 2) * T * O * 4));
      col0 += O;
    });
    this.#end(ops, useful);
    return result;
  }

  #padRows(...args: Parameters<typeof padRows>): HbmArray {
    const [, rows, cols, , rowsPad, colsPad] = args;
    return this.costOnly ? virtualArray([rowsPad, colsPad], 'bf16', [rows, cols]) : padRows(...args);
  }

  #padStack(...args: Parameters<typeof padStack>): HbmArray {
    const [, slots, rows, cols, rowsPad, colsPad, transpose] = args;
    if (!this.costOnly) return padStack(...args);
    return transpose
      ? virtualArray([slots + 1, colsPad, rowsPad], 'bf16', [slots, cols, rows])
      : virtualArray([slots + 1, rowsPad, colsPad], 'bf16', [slots, rows, cols]);
  }

  #packLanesOut(...args: Parameters<typeof packLanesOut>): HbmArray {
    const [, , , hidden, lanes, hiddenPad] = args;
    return this.costOnly
      ? virtualArray([lanes.groups, lanes.width, hiddenPad], 'bf16', [lanes.groups, lanes.width, hidden])
      : packLanesOut(...args);
  }

  #packLanesIn(...args: Parameters<typeof packLanesIn>): HbmArray {
    const [, , out, , lanes, outPad, layout] = args;
    if (!this.costOnly) return packLanesIn(...args);
    return layout === 'nn'
      ? virtualArray([lanes.groups, lanes.width, outPad], 'bf16', [lanes.groups, lanes.width, out])
      : virtualArray([lanes.groups, outPad, lanes.width], 'bf16', [lanes.groups, out, lanes.width]);
  }

  #scatterLanes(...args: Parameters<typeof scatterLanes>): HbmArray {
    const [, slots, , lanes, rowsPad, single] = args;
    const width = single ? lanes.width : lanes.groups * lanes.width;
    return this.costOnly ? virtualArray([rowsPad, width], 'bf16', [slots.length, width]) : scatterLanes(...args);
  }

  get #mxu(): number {
    return this.options.chip.mxu;
  }

  #einsumTokens(meta: LoRAMapping): number {
    return this.options.flags.bucketing ? Math.max(meta.tokenBucket, meta.numTokens) : meta.numTokens;
  }

  #spec(
    name: LoraMatmulSpec['name'],
    tokens: TokenPlan,
    out: DimPlan,
    contraction: DimPlan,
    w: HbmArray,
    layout: 'nt' | 'nn',
    laneSide: LoraMatmulSpec['laneSide'],
    lanes: Lanes | undefined,
    rank: number,
    single: boolean,
    zeroSlot: number,
  ): LoraMatmulSpec {
    const f = this.options.flags;
    const mode: MaskMode = single ? 'single' : f.fastMask ? 'adapter' : 'token';
    return { name, tokens, out, contraction, weightShape: w.shape, layout, laneSide, lanes, rank, mode, blockSkip: f.blockSkip, zeroSlot };
  }

  #run(def: KernelDef, prefetch: Int32Array[], inputs: HbmArray[], kind: 'pallas' | 'xla'): HbmArray {
    const program = this.cache.compile(def);
    const spec = def.outputs[0]!;
    const out = this.costOnly ? virtualArray(spec.shape, spec.dtype) : hbmArray(spec.shape, spec.dtype);
    if (this.compileOnly) return out;
    const run = program.run(prefetch, inputs, [out]);
    this.vmemPeakBytes = Math.max(this.vmemPeakBytes, run.vmemBytes);
    // A real TPU would refuse to compile this program (Mosaic VMEM OOM); the simulator runs it and counts it.
    if (run.vmemBytes > this.options.chip.vmemBytes) this.vmemOverflows++;
    this.lastCall.push({ ...kernelCost(run, this.options.chip, this.options.stepOverheadSeconds), kind });
    return out;
  }

  /** An XLA op around the kernel; `apiGlue` unless it is the per-call weight transpose the flag measures. */
  #xla(op: string, bytes: number): OpCost {
    return xlaCost(op, bytes, this.options.chip, this.options.stepOverheadSeconds, op !== 'transpose expand weights');
  }

  #gatherShrink(
    result: Float32Array,
    out: HbmArray,
    slots: Int32Array,
    s: number,
    R: number,
    column: (t: number) => number,
    scale: number,
  ): void {
    if (this.costOnly) return;
    const cols = out.shape[1] as number;
    const T = slots.length;
    for (let t = 0; t < T; t++) {
      if ((slots[t] as number) < 0) continue; // -1 tokens: zeros (the zero slot's product)
      const src = t * cols + column(t);
      const dst = (s * T + t) * R;
      for (let r = 0; r < R; r++) result[dst + r] = Math.fround((out.data[src + r] as number) * scale);
    }
  }

  /** Ops pushed between #begin and #end are one backend call. */
  #begin(): OpCost[] {
    this.lastCall = [];
    return this.lastCall;
  }

  #end(ops: OpCost[], usefulFlops: number): void {
    this.totals.calls++;
    this.totals.usefulFlops += usefulFlops;
    for (const op of ops) addOp(this.totals, op);
  }

  /** Running totals plus compiles, for `LoRABackend.stats()`. */
  stats(): TpuSimStats {
    return { programsCompiled: this.cache.compiled, ...this.totals, vmemPeakBytes: this.vmemPeakBytes, vmemOverflows: this.vmemOverflows };
  }
}
