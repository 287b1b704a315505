import { roundUp } from '@lora/core/backend';
import { roundBf16Array } from '../bf16.js';
import { isVirtual } from '../pallas/arrays.js';
import { matmulAccumulate } from '../pallas/dot.js';
import type { KernelDef, StepContext } from '../pallas/interpreter.js';

/**
 * What vLLM merged in the end: `einsum("td,tX,Xld->tl", x, one_hot(idx, N), loras)` as one XLA op
 * that XLA can fuse with its neighbours. Modelled as a one-step program over whole arrays (no
 * Pallas grid, no padding beyond the token bucket). The one-hot is generated in the fusion from the
 * index (an iota compare), so only the index is read. XLA contracts in the cheaper of two orders:
 * `x · loras` over d then select (`[T, d]·[d, N·l]`), or select then contract over (X, d)
 * (`[T, N·d]·[N·d, l]`); the MXU is charged for that order, one-hot zeros included. Numbers: the
 * one-hot picks exactly one term, so the result equals the masked kernels' bit for bit.
 */
export interface EinsumSpec {
  readonly name: 'einsum-shrink' | 'einsum-expand';
  readonly tokens: number;
  /** Weight stack `[slots + 1, out, contraction]` (zero slot last). */
  readonly slots: number;
  readonly out: number;
  readonly contraction: number;
  readonly mxu: number;
}

export function einsumKernel(s: EinsumSpec): KernelDef {
  const { tokens: T, slots: N, out: L, contraction: K, mxu } = s;
  const pad = (n: number) => roundUp(n, mxu);
  const contractFirst = pad(K) * pad(N * L);
  const selectFirst = pad(N * K) * pad(L);
  const [k, n] = contractFirst <= selectFirst ? [K, N * L] : [N * K, L];
  const rows = new Int32Array(T);
  const body = (ctx: StepContext): void => {
    // XLA accumulates straight into the (zeroed) output: no VMEM scratch for a whole-array op.
    const out = ctx.outputs[0]!.array;
    const acc = out.data;
    const idx = ctx.prefetch[0] as Int32Array;
    ctx.chargeMatmul(T, k, n);
    for (let slot = 0; slot < N; slot++) {
      let count = 0;
      for (let t = 0; t < T; t++) if (idx[t] === slot) rows[count++] = t;
      if (count > 0 && !isVirtual(out)) {
        matmulAccumulate({ acc, x: ctx.inputs[0]!, w: ctx.inputs[1]!, lead: slot, layout: 'nt', rows, rowCount: count });
      }
    }
    // The einsum's result has the operands' dtype (bf16): the f32 sums are rounded once.
    if (!isVirtual(out)) roundBf16Array(acc, acc);
  };
  return {
    name: s.name,
    grid: [1],
    dimensions: ['parallel'],
    numPrefetch: 1,
    inputs: [
      { shape: [T, K], dtype: 'bf16', spec: { block: [T, K], index: () => [0, 0] } },
      { shape: [N, L, K], dtype: 'bf16', spec: { block: [N, L, K], index: () => [0, 0, 0] } },
    ],
    outputs: [{ shape: [T, L], dtype: 'bf16', spec: { block: [T, L], index: () => [0, 0] } }],
    scratch: [],
    statics: { order: contractFirst <= selectFirst ? 'contract-first' : 'select-first' },
    body,
  };
}
