import { type LoRARuntime, loadPeftAdapter } from '@lora/core';
import { adapterFiles, type ModelConfig } from '@lora/llama';

/**
 * `count` seeded adapters on every linear module of the model (PEFT files, loaded as a user's would
 * be), adapter i of rank `ranks[i % ranks.length]` (mixed ranks: each padded to the runtime's
 * `maxLoraRank`); their ids.
 */
export function registerBenchAdapters(rt: LoRARuntime, config: ModelConfig, count: number, ranks: readonly number[]): string[] {
  const targets = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
  for (let i = 0; i < count; i++) {
    const id = `bench-${i}`;
    const rank = ranks[i % ranks.length] as number;
    rt.adapters.register(loadPeftAdapter({ id, ...adapterFiles(config, { id, rank, alpha: 2 * rank, targets }, 500 + i) }));
  }
  return [...rt.adapters.registered];
}

/** The ranks of a bench's adapters in a title: "rank 16", or "ranks 8/16/32" when they are mixed. */
export function ranksLabel(rank: number, ranks: readonly number[] | undefined): string {
  return ranks === undefined || ranks.length < 2 ? `rank ${rank}` : `ranks ${ranks.join('/')}`;
}
