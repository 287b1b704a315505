import { roundBf16Array } from '../bf16.js';
import { isVirtual } from '../pallas/arrays.js';
import { matmulAccumulate } from '../pallas/dot.js';
import type { KernelDef, StepContext } from '../pallas/interpreter.js';
import type { DimPlan, Lanes, TokenPlan } from './plan.js';

/**
 * vLLM PR 15655's Pallas multi-LoRA kernel, one definition for every variant: grid
 * (token blocks, output blocks, contraction blocks) with semantics (parallel, parallel, arbitrary),
 * an f32 accumulator in VMEM scratch zeroed at the first contraction step and written out at the
 * last, the token→slot array scalar-prefetched. What varies is static (part of the compile
 * signature): how tokens are masked, block skipping, lanes, weight layout, block shapes.
 *
 * - mode 'token': the first kernel, one masked matmul per token of the block;
 * - mode 'adapter' (fastMask): one mask `idx == n` and one matmul per adapter (or lane group);
 * - mode 'single' (singleNoMask): every token uses one adapter, whose block the index map picks
 *   from prefetched scalars: a plain dot, no mask;
 * - blockSkip: only adapters present in the token block get a matmul (the zero slot of -1 tokens
 *   never does: its product is known to be zero); a step with none issues no MXU work;
 * - lanes 'out' (laned shrink): output block j is lane group j; a token's mask selects its lane;
 * - lanes 'in' (laned expand): contraction block k is lane group k; the laned input is zero outside
 *   each token's lane, so no mask is needed at all.
 */
export type MaskMode = 'token' | 'adapter' | 'single';

export interface LoraMatmulSpec {
  readonly name: 'bgmv' | 'shrink' | 'expand';
  readonly tokens: TokenPlan;
  readonly out: DimPlan;
  readonly contraction: DimPlan;
  /** Shape of the prepared weight array: `[slots + 1, …]` or `[groups, …]` when laned. */
  readonly weightShape: readonly number[];
  /** 'nt': weights `[·, out, contraction]`; 'nn': `[·, contraction, out]`. */
  readonly layout: 'nt' | 'nn';
  readonly laneSide: 'none' | 'out' | 'in';
  readonly lanes?: Lanes;
  /** Real rank inside a lane (padded lanes hold zeros). */
  readonly rank: number;
  readonly mode: MaskMode;
  readonly blockSkip: boolean;
  /** Slot index that -1 and padding tokens are routed to. */
  readonly zeroSlot: number;
}

/**
 * prefetch[0]: slot per padded token. prefetch[1] (mode 'single'): [weight index, lane column] of the
 * batch's one adapter. inputs: x `[Tpad, Kpad]` bf16, weights bf16. output: `[Tpad, outPad]` bf16, the f32
 * accumulator rounded once when it is written out, as the PR's kernels do (`out_shape` in the model
 * dtype and `out_ref[...] = acc_ref[...].astype(out_ref.dtype)`: vllm-project/vllm
 * vllm/lora/ops/xla_ops/pallas.py, PRs 14238 and 15655).
 */
export function loraMatmulKernel(s: LoraMatmulSpec): KernelDef {
  const bT = s.tokens.block;
  const bN = s.out.block;
  const bK = s.contraction.block;
  const lanes = s.lanes;
  const perLane = lanes?.lanes ?? 1;
  const laneRank = lanes?.rank ?? 0;
  const multiLead = s.mode !== 'single' && s.laneSide === 'none';
  const leadCount = multiLead ? (s.weightShape[0] as number) : 1;
  const wBlock = s.layout === 'nt' ? [leadCount, bN, bK] : [leadCount, bK, bN];

  // Per-program row lists, reused by every step (steps run one at a time).
  const rows = new Int32Array(bT);
  const lo = new Int32Array(bT);
  const hi = new Int32Array(bT);

  const weightIndex = (g: readonly number[], p: readonly Int32Array[]): number[] => {
    const [, j, k] = g as [number, number, number];
    const lead = s.mode === 'single' ? (p[1]![0] as number) : s.laneSide === 'out' ? j : s.laneSide === 'in' ? k : 0;
    const o = s.laneSide === 'out' ? 0 : j;
    const c = s.laneSide === 'in' ? 0 : k;
    return s.layout === 'nt' ? [lead, o, c] : [lead, c, o];
  };

  const body = (ctx: StepContext): void => {
    const i = ctx.programId(0);
    const j = ctx.programId(1);
    const k = ctx.programId(2);
    const acc = ctx.scratch[0] as Float32Array;
    ctx.when(k === 0, () => acc.fill(0));
    const idx = ctx.prefetch[0] as Int32Array;
    const t0 = i * bT;
    const x = ctx.inputs[0]!;
    const w = ctx.inputs[1]!;
    const mm = (lead: number, count?: number, cols?: boolean, ks?: boolean) =>
      matmulAccumulate({
        acc,
        x,
        w,
        lead,
        layout: s.layout,
        rows: count === undefined ? undefined : rows,
        rowCount: count,
        colLo: cols ? lo : undefined,
        colHi: cols ? hi : undefined,
        kLo: ks ? lo : undefined,
        kHi: ks ? hi : undefined,
      });

    if (s.mode === 'single') {
      ctx.chargeMatmul(bT, bK, bN);
      if (s.laneSide === 'none') {
        mm(0);
      } else {
        // Laned weights: the adapter's lane within its group (the rest of the tile is not its result).
        const lane = (ctx.prefetch[1] as Int32Array)[1] as number;
        for (let r = 0; r < bT; r++) {
          rows[r] = r;
          lo[r] = lane;
          hi[r] = lane + s.rank;
        }
        mm(0, bT, s.laneSide === 'out', s.laneSide === 'in');
      }
    } else if (s.laneSide === 'none') {
      if (s.mode === 'token') {
        for (let r = 0; r < bT; r++) {
          const n = idx[t0 + r] as number;
          if (s.blockSkip && n === s.zeroSlot) continue;
          ctx.chargeMatmul(bT, bK, bN);
          rows[0] = r;
          mm(n, 1);
        }
      } else {
        for (let n = 0; n < leadCount; n++) {
          let count = 0;
          for (let r = 0; r < bT; r++) if (idx[t0 + r] === n) rows[count++] = r;
          if (s.blockSkip && (count === 0 || n === s.zeroSlot)) continue;
          ctx.chargeMatmul(bT, bK, bN);
          if (count > 0) mm(n, count);
        }
      }
    } else {
      // Lanes: the step's group is j (shrink, output side) or k (expand, contraction side).
      const group = s.laneSide === 'out' ? j : k;
      let count = 0;
      for (let r = 0; r < bT; r++) {
        const n = idx[t0 + r] as number;
        if (n === s.zeroSlot || Math.floor(n / perLane) !== group) continue;
        rows[count] = r;
        lo[count] = (n % perLane) * laneRank;
        hi[count] = lo[count]! + s.rank;
        count++;
      }
      // Laned shrink in token mode still issues one masked matmul per token; laned expand needs no mask.
      const charges = s.laneSide === 'out' && s.mode === 'token' ? (s.blockSkip ? count : bT) : s.blockSkip && count === 0 ? 0 : 1;
      for (let c = 0; c < charges; c++) ctx.chargeMatmul(bT, bK, bN);
      if (count > 0) mm(0, count, s.laneSide === 'out', s.laneSide === 'in');
    }

    ctx.when(k === ctx.numPrograms(2) - 1, () => {
      const out = ctx.outputs[0]!;
      if (isVirtual(out.array)) return;
      const cols = out.array.shape[1] as number;
      const [r0, c0] = out.origin as [number, number];
      for (let r = 0; r < bT; r++) {
        const at = (r0 + r) * cols + c0;
        out.array.data.set(acc.subarray(r * bN, (r + 1) * bN), at);
        roundBf16Array(out.array.data.subarray(at, at + bN), out.array.data.subarray(at, at + bN));
      }
    });
  };

  // Block skipping: a step whose token block has no token of the adapters it covers issues no MXU
  // work; its index maps then repeat the previous block (no DMA). Which adapters a step covers:
  // all of them without lanes (every non-zero slot), lane group j (shrink) or k (expand) with lanes.
  // Presence per (token block, group) is computed once per index array, as a kernel would from the
  // scalar-prefetched indices.
  const groupsOf = lanes ? lanes.groups : 1;
  const presence = new WeakMap<Int32Array, Uint8Array>();
  const present = (idx: Int32Array): Uint8Array => {
    let p = presence.get(idx);
    if (p === undefined) {
      p = new Uint8Array((s.tokens.padded / bT) * groupsOf);
      for (let t = 0; t < s.tokens.padded; t++) {
        const n = idx[t] as number;
        if (n === s.zeroSlot) continue;
        const group = lanes ? Math.floor(n / perLane) : 0;
        p[Math.floor(t / bT) * groupsOf + group] = 1;
      }
      presence.set(idx, p);
    }
    return p;
  };
  const skipStep =
    s.blockSkip && s.mode !== 'single'
      ? (g: readonly number[], p: readonly Int32Array[]): boolean => {
          const group = s.laneSide === 'out' ? (g[1] as number) : s.laneSide === 'in' ? (g[2] as number) : 0;
          return present(p[0] as Int32Array)[(g[0] as number) * groupsOf + group] === 0;
        }
      : undefined;

  return {
    name: s.name,
    skipStep,
    grid: [s.tokens.padded / bT, s.out.padded / bN, s.contraction.padded / bK],
    dimensions: ['parallel', 'parallel', 'arbitrary'],
    numPrefetch: s.mode === 'single' ? 2 : 1,
    inputs: [
      { shape: [s.tokens.padded, s.contraction.padded], dtype: 'bf16', spec: { block: [bT, bK], index: (g) => [g[0]!, g[2]!] } },
      { shape: s.weightShape, dtype: 'bf16', spec: { block: wBlock, index: weightIndex } },
    ],
    outputs: [{ shape: [s.tokens.padded, s.out.padded], dtype: 'bf16', spec: { block: [bT, bN], index: (g) => [g[0]!, g[1]!] } }],
    scratch: [[bT, bN]],
    statics: {
      mode: s.mode,
      layout: s.layout,
      laneSide: s.laneSide,
      blockSkip: s.blockSkip,
      lanes: perLane,
      laneRank,
      rank: s.rank,
    },
    body,
  };
}
