import { computeMapping } from '@lora/core/backend';
import { CHIPS, type ChipSpec } from './chips.js';
import type { LlamaShape } from './estimate.js';
import { priceLayer } from './estimate.js';
import { resolveTpuSimOptions } from './options.js';
import { TpuSim } from './sim.js';

/**
 * Where the one-hot einsum stops beating the Pallas kernels. The einsum contracts against every
 * slot's weights whatever the batch uses (its bytes and MXU columns grow with `max_loras`); the
 * Pallas kernels only fetch and multiply the lane groups present in each token block (they grow with
 * the adapters a batch actually uses, in steps of a lane group, and pay grid-step overhead and
 * padding). The crossover is a property of the LoRA kernels alone (the base step is the same for
 * both), so this compares the LoRA time of one step, all layers, one chip.
 */

/** One point of the crossover grid: the LoRA time of one decode step under both variants. */
export interface CrossoverPoint {
  /** `max_loras`: adapter slots in every stack (the einsum contracts against all of them). */
  readonly maxLoras: number;
  /** Distinct adapters among the batch's sequences (round-robin). */
  readonly distinct: number;
  /** LoRA time of the step with the 'einsum' preset, all layers, one chip, seconds. */
  readonly einsumSeconds: number;
  /** LoRA time of the step with the 'all-on' Pallas preset, all layers, one chip, seconds. */
  readonly pallasSeconds: number;
}

/** The LoRA time of one decode step of `batch` sequences spread round-robin over `distinct` adapters. */
export function loraStepSeconds(
  m: LlamaShape,
  chip: ChipSpec,
  options: Readonly<Record<string, unknown>>,
  maxLoras: number,
  distinct: number,
  rank: number,
  batch: number,
): number {
  const sim = new TpuSim(resolveTpuSimOptions({ ...options, chip: chip.name }), { costOnly: true });
  const slots = Int32Array.from({ length: batch }, (_, t) => t % distinct);
  const meta = computeMapping(slots, { maxLoras, maxNumTokens: 8192 });
  priceLayer(sim, m, meta, { adapters: maxLoras, rank });
  return sim.totals.kernelMicros * 1e-6 * m.layers;
}

/** Powers of two from 1 to `max`. */
export const powersOfTwo = (max: number): number[] => {
  const out: number[] = [];
  for (let n = 1; n <= max; n *= 2) out.push(n);
  return out;
};

/** The grid for one model and chip: max_loras 1…256 × distinct adapters 1…min(max_loras, batch). */
export function crossoverGrid(m: LlamaShape, chipName: ChipSpec['name'], rank = 16, batch = 128, maxLorasMax = 256): CrossoverPoint[] {
  const chip = CHIPS[chipName];
  const out: CrossoverPoint[] = [];
  for (const maxLoras of powersOfTwo(maxLorasMax)) {
    for (const distinct of powersOfTwo(Math.min(maxLoras, batch))) {
      out.push({
        maxLoras,
        distinct,
        einsumSeconds: loraStepSeconds(m, chip, { preset: 'einsum' }, maxLoras, distinct, rank, batch),
        pallasSeconds: loraStepSeconds(m, chip, { preset: 'all-on' }, maxLoras, distinct, rank, batch),
      });
    }
  }
  return out;
}

/**
 * For each max_loras: the most distinct adapters per batch at which the Pallas kernels are still
 * faster than the einsum (0: the einsum wins however few adapters the batch uses). Above it the
 * einsum wins: its cost does not grow with the adapters used, the Pallas kernels' does.
 */
export function crossoverFrontier(points: readonly CrossoverPoint[]): Array<{
  /** `max_loras` of this row of the grid. */
  maxLoras: number;
  /** Most distinct adapters at which the Pallas kernels are faster; 0 when the einsum always wins. */
  pallasWinsUpTo: number;
  /** Most distinct adapters the grid priced at this `max_loras`. */
  distinctMax: number;
}> {
  const byMax = new Map<number, CrossoverPoint[]>();
  for (const p of points) byMax.set(p.maxLoras, [...(byMax.get(p.maxLoras) ?? []), p]);
  return [...byMax.entries()].map(([maxLoras, ps]) => {
    const wins = ps.filter((p) => p.pallasSeconds < p.einsumSeconds).map((p) => p.distinct);
    return { maxLoras, pallasWinsUpTo: wins.length ? Math.max(...wins) : 0, distinctMax: Math.max(...ps.map((p) => p.distinct)) };
  });
}
