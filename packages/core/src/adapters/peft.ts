import { describeValue, LoRAError } from '../errors.js';
import { type ParsedSafetensors, parseSafetensors, type SafetensorsTensor } from '../formats/safetensors.js';
import { isNode, nodeFs } from '../node.js';
import { type AdapterModuleWeights, createAdapter, type LoRAAdapter } from './adapter.js';
import { isTargeted, moduleScale, type PeftAdapterConfig, parsePeftConfig } from './peft-config.js';

/**
 * Hugging Face PEFT adapters: adapter_config.json + adapter_model.safetensors with keys such as
 * `base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight`. q/k/v and gate/up map onto
 * packed layers by module name (the layer lists one module per slice).
 */

export interface PeftAdapter extends LoRAAdapter {
  readonly config: PeftAdapterConfig;
  readonly metadata: Readonly<Record<string, string>>;
}

// `<module>.lora_A.weight`, optionally with an adapter name before `.weight` (older PEFT files).
const LINEAR_KEY = /^(?:base_model\.model\.)?(.+)\.lora_(A|B)(?:\.[^.]+)?\.weight$/;
const EMBEDDING_KEY = /^(?:base_model\.model\.)?(.+)\.lora_embedding_(A|B)(?:\.[^.]+)?$/;

interface Pair {
  kind: 'linear' | 'embedding';
  A?: SafetensorsTensor;
  B?: SafetensorsTensor;
}

const format = (message: string): never => {
  throw new LoRAError('E_FORMAT', `adapter_model.safetensors: ${message}`);
};

function classify(key: string): { module: string; kind: 'linear' | 'embedding'; which: 'A' | 'B' } {
  const linear = LINEAR_KEY.exec(key);
  if (linear) return { module: linear[1] as string, kind: 'linear', which: linear[2] as 'A' | 'B' };
  const emb = EMBEDDING_KEY.exec(key);
  if (emb) return { module: emb[1] as string, kind: 'embedding', which: emb[2] as 'A' | 'B' };
  if (/lora_magnitude_vector/.test(key))
    throw new LoRAError('E_UNSUPPORTED', `adapter_model.safetensors: ${key} is a DoRA magnitude vector; DoRA is not supported`);
  if (/\.lora_B(?:\.[^.]+)?\.bias$/.test(key))
    throw new LoRAError('E_UNSUPPORTED', `adapter_model.safetensors: ${key} is a LoRA bias; only bias "none" is supported`);
  return format(
    `unexpected tensor ${describeValue(key)}; expected <module>.lora_A.weight / lora_B.weight or lora_embedding_A / lora_embedding_B`,
  );
}

function moduleWeights(module: string, pair: Pair, config: PeftAdapterConfig): AdapterModuleWeights {
  const { A, B, kind } = pair;
  if (!A || !B) return format(`module ${module} has lora_${A ? 'A' : 'B'} but no lora_${A ? 'B' : 'A'}`);
  if (A.shape.length !== 2 || B.shape.length !== 2)
    format(`module ${module}: lora_A [${A.shape}] and lora_B [${B.shape}] must be matrices`);
  const { rank, scale } = moduleScale(config, module);
  const [aRows, inFeatures] = A.shape as [number, number];
  const [outFeatures, bCols] = B.shape as [number, number];
  if (aRows !== rank || bCols !== rank) {
    format(
      `module ${module}: lora_A [${A.shape}] and lora_B [${B.shape}] do not have the rank ${rank} that adapter_config.json gives it (r / rank_pattern)`,
    );
  }
  if (!isTargeted(config, module))
    format(`module ${module} holds weights but is not in target_modules ${describeValue(config.targetModules)}`);
  return { name: module, kind, rank, scale, a: A.data, b: B.data, inFeatures, outFeatures };
}

/** A PEFT adapter from its two files' contents (config as JSON text or object, safetensors bytes or parsed). */
export function loadPeftAdapter(input: { id: string; config: unknown; safetensors: Uint8Array | ParsedSafetensors }): PeftAdapter {
  if (typeof input?.id !== 'string' || input.id.length === 0)
    throw new LoRAError('E_CONFIG', `adapter id must be a non-empty string, got ${describeValue(input?.id)}`);
  const config = parsePeftConfig(input.config);
  const parsed = input.safetensors instanceof Uint8Array ? parseSafetensors(input.safetensors) : input.safetensors;
  const pairs = new Map<string, Pair>();
  for (const [key, tensor] of Object.entries(parsed.tensors)) {
    const { module, kind, which } = classify(key);
    const pair = pairs.get(module) ?? { kind };
    if (pair.kind !== kind) format(`module ${module} mixes linear and embedding LoRA weights`);
    if (pair[which]) format(`module ${module} has lora_${which} twice (${key})`);
    pair[which] = tensor;
    pairs.set(module, pair);
  }
  if (pairs.size === 0) format('holds no LoRA weights');
  const modules = [...pairs].map(([module, pair]) => moduleWeights(module, pair, config));
  return Object.freeze({ ...createAdapter(input.id, modules), config, metadata: parsed.metadata });
}

/**
 * Node: reads `<dir>/adapter_config.json` and `<dir>/adapter_model.safetensors`. Pickled
 * `adapter_model.bin` files are refused (unpickling runs code); convert them to safetensors.
 */
export async function loadPeftAdapterFromDir(dir: string, id?: string): Promise<PeftAdapter> {
  if (!isNode()) {
    throw new LoRAError('E_UNSUPPORTED', 'loadPeftAdapterFromDir needs Node.js; in a browser fetch the two files and call loadPeftAdapter');
  }
  const { fs, path } = await nodeFs();
  const read = async (name: string): Promise<Buffer | undefined> => {
    try {
      return await fs.readFile(path.join(dir, name));
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') return undefined;
      throw new LoRAError('E_FORMAT', `cannot read ${path.join(dir, name)}: ${(err as Error).message}`, { cause: err });
    }
  };
  const config = await read('adapter_config.json');
  if (config === undefined)
    throw new LoRAError('E_NOT_FOUND', `${path.join(dir, 'adapter_config.json')} does not exist; expected a PEFT adapter directory`);
  const weights = await read('adapter_model.safetensors');
  if (weights === undefined) {
    if ((await read('adapter_model.bin')) !== undefined) {
      throw new LoRAError(
        'E_UNSUPPORTED',
        `${dir} has adapter_model.bin (a pickle); convert it to safetensors first, e.g. in Python: PeftModel.from_pretrained(base, dir).save_pretrained(out, safe_serialization=True)`,
      );
    }
    throw new LoRAError('E_NOT_FOUND', `${path.join(dir, 'adapter_model.safetensors')} does not exist`);
  }
  const bytes = new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength);
  return loadPeftAdapter({ id: id ?? path.basename(path.resolve(dir)), config: config.toString('utf8'), safetensors: bytes });
}
