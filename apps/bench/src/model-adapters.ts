import { type LoRARuntime, loadPeftAdapter } from '@lora/core';
import { adapterFiles, type ModelConfig } from '@lora/llama';

/** `count` seeded adapters of `rank` on every linear module of the model (PEFT files, loaded as a user's would be); their ids. */
export function registerBenchAdapters(rt: LoRARuntime, config: ModelConfig, count: number, rank: number): string[] {
  const targets = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
  for (let i = 0; i < count; i++) {
    const id = `bench-${i}`;
    rt.adapters.register(loadPeftAdapter({ id, ...adapterFiles(config, { id, rank, alpha: 2 * rank, targets }, 500 + i) }));
  }
  return [...rt.adapters.registered];
}
