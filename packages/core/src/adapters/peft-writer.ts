import { type SerializableDType, serializeSafetensors } from '../formats/safetensors.js';
import { nodeBuiltins } from '../node.js';
import type { AdapterModuleWeights } from './adapter.js';

/** An adapter's two PEFT files in memory, as {@link serializePeftAdapter} makes them and {@link writePeftAdapterDir} writes them. */
export interface PeftFiles {
  /** adapter_config.json text. */
  config: string;
  /** adapter_model.safetensors bytes. */
  safetensors: Uint8Array;
}

/** One module for {@link serializePeftAdapter}: its weights without a scale (B is written as given; scaling comes from the config). */
export type ModuleToWrite = Pick<AdapterModuleWeights, 'name' | 'kind' | 'rank' | 'a' | 'b' | 'inFeatures' | 'outFeatures' | 'magnitude'>;

/**
 * Writes an adapter the way PEFT's `save_pretrained` does: keys
 * `base_model.model.<module>.lora_A.weight` `[r, in]` / `lora_B.weight` `[out, r]`, embeddings as
 * `lora_embedding_A` `[r, V]` / `lora_embedding_B` `[D, r]`, DoRA's `lora_magnitude_vector` `[out]`
 * where a module has one (and then `use_dora: true` unless `config` says otherwise), plus
 * adapter_config.json. B is written as given (unscaled): scaling comes from the config when the
 * adapter is loaded.
 */
export function serializePeftAdapter(
  modules: Iterable<ModuleToWrite>,
  config: Record<string, unknown>,
  dtype: SerializableDType = 'F32',
): PeftFiles {
  const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
  let dora = false;
  for (const m of modules) {
    const prefix = `base_model.model.${m.name}`;
    const [a, b] = m.kind === 'linear' ? ['lora_A.weight', 'lora_B.weight'] : ['lora_embedding_A', 'lora_embedding_B'];
    tensors[`${prefix}.${a}`] = { shape: [m.rank, m.inFeatures], data: m.a };
    tensors[`${prefix}.${b}`] = { shape: [m.outFeatures, m.rank], data: m.b };
    if (m.magnitude !== undefined) tensors[`${prefix}.lora_magnitude_vector`] = { shape: [m.outFeatures], data: m.magnitude };
    dora ||= m.magnitude !== undefined;
  }
  const fullConfig = { peft_type: 'LORA', bias: 'none', use_dora: dora, modules_to_save: null, ...config };
  return { config: `${JSON.stringify(fullConfig, null, 2)}\n`, safetensors: serializeSafetensors(tensors, { format: 'pt' }, dtype) };
}

/** Node: writes `adapter_config.json` and `adapter_model.safetensors` into `dir` (created if needed). */
export async function writePeftAdapterDir(dir: string, files: PeftFiles): Promise<void> {
  const { fs, path } = await nodeBuiltins('fs', 'path');
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, 'adapter_config.json'), files.config);
  await fs.writeFile(path.join(dir, 'adapter_model.safetensors'), files.safetensors);
}
