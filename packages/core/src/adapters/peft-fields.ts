import { describeValue, LoRAError } from '../errors.js';

/**
 * Every field of PEFT's `LoraConfig` (huggingface/peft `src/peft/tuners/lora/config.py` and
 * `src/peft/config.py`), sorted by what it does to the forward pass of a loaded adapter. An adapter
 * is served exactly as PEFT computes it or refused with E_UNSUPPORTED naming the field: a field
 * that changes the math and is not implemented here must never be ignored silently.
 */

/** Read by `parsePeftConfig` and applied (or checked) by this loader. */
const IMPLEMENTED = new Set([
  'r',
  'lora_alpha',
  'target_modules',
  'exclude_modules',
  'use_rslora',
  'rank_pattern',
  'alpha_pattern',
  'fan_in_fan_out',
  'layers_to_transform',
  'layers_pattern',
  'use_dora',
  'alora_invocation_tokens',
]);

/**
 * No effect on inference: bookkeeping, training-time settings (dropout is the identity at
 * inference), and initialisation settings whose methods leave the base weights untouched.
 */
const NO_INFERENCE_EFFECT = new Set([
  'task_type',
  'base_model_name_or_path',
  'revision',
  'inference_mode',
  'auto_mapping',
  'peft_version',
  'lora_dropout',
  'runtime_config',
  'eva_config',
  'loftq_config',
  'corda_config',
  'lora_ga_config',
  'qalora_group_size',
  'ensure_weight_tying',
]);

/**
 * `init_lora_weights` values after which the saved A/B apply to the base model unchanged. PiSSA,
 * OLoRA, CorDA, LoftQ and LoRA-GA subtract their initial adapter from the base weights, so their
 * saved adapters need that modified base unless PEFT converted them on save
 * (`save_pretrained(path_initial_model_for_weight_conversion=…)`, which writes `true` here);
 * MiCA selects a LoRA variant with another forward.
 */
const PLAIN_INIT = new Set<unknown>([true, false, 'gaussian', 'eva', 'orthogonal']);

type Rule = (value: unknown) => string | undefined;

const off = (value: unknown): boolean =>
  value === undefined ||
  value === null ||
  value === false ||
  value === '' ||
  (Array.isArray(value) && value.length === 0) ||
  (typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 0);

const refuseUnlessOff =
  (what: string): Rule =>
  (value) =>
    off(value) ? undefined : what;

/** Fields that change the forward pass: accepted only at their "off" value. (A Map: field names come from the file, "__proto__" included.) */
const RULES = new Map<string, Rule>(
  Object.entries({
    peft_type: (v) => (v === undefined || v === 'LORA' ? undefined : `peft_type ${describeValue(v)} is not supported; only "LORA"`),
    bias: (v) =>
      v === undefined || v === 'none' ? undefined : `bias ${describeValue(v)} is not supported; only "none" (LoRA biases would be ignored)`,
    lora_bias: refuseUnlessOff('lora_bias: true adds a bias to lora_B, which this loader does not apply'),
    modules_to_save: refuseUnlessOff('modules_to_save: those fully trained modules would be ignored'),
    trainable_token_indices: refuseUnlessOff('trainable_token_indices: the trained embedding rows would be ignored'),
    layer_replication: refuseUnlessOff('layer_replication: the model would need its layers duplicated as listed'),
    use_qalora: refuseUnlessOff('use_qalora: QA-LoRA pools the input of A, which this loader does not do'),
    target_parameters: refuseUnlessOff('target_parameters: LoRA on parameters (e.g. MoE experts) is not supported'),
    megatron_config: refuseUnlessOff('megatron_config: Megatron parallel layers are not supported'),
    megatron_core: (v) =>
      v === undefined || v === null || v === 'megatron.core' ? undefined : `megatron_core ${describeValue(v)} is not supported`,
    use_bdlora: refuseUnlessOff('use_bdlora: block-diagonal LoRA is not supported'),
    arrow_config: refuseUnlessOff('arrow_config: Arrow routing mixes adapters per token, which this loader does not implement'),
    kasa_config: refuseUnlessOff('kasa_config: KaSA changes the forward pass and is not supported'),
    velora_config: refuseUnlessOff('velora_config: VeLoRA is not supported'),
    monteclora_config: refuseUnlessOff('monteclora_config: MonteCLoRA is not supported'),
    init_lora_weights: (v) =>
      v === undefined || PLAIN_INIT.has(v)
        ? undefined
        : `init_lora_weights ${describeValue(v)}: ${
            v === 'mica'
              ? 'MiCA is a LoRA variant with its own forward pass'
              : 'this initialisation changes the base weights; re-save the adapter with PEFT save_pretrained(path_initial_model_for_weight_conversion=…) to get a plain LoRA'
          }`,
  } satisfies Record<string, Rule>),
);

/**
 * Throws E_UNSUPPORTED for the first field that would make PEFT compute something this loader does
 * not. Unknown fields (a newer PEFT) pass only at an "off" value (null, false, empty): a new PEFT
 * feature is off by default, and one that is on may change the forward pass.
 */
export function checkPeftFields(config: Readonly<Record<string, unknown>>): void {
  for (const [field, value] of Object.entries(config)) {
    const rule = RULES.get(field);
    const refusal = rule
      ? rule(value)
      : IMPLEMENTED.has(field) || NO_INFERENCE_EFFECT.has(field) || off(value)
        ? undefined
        : `field ${describeValue(field)} = ${describeValue(value)} is not known to this loader; it may change the forward pass, so the adapter is refused`;
    if (refusal !== undefined) throw new LoRAError('E_UNSUPPORTED', `adapter_config.json: ${refusal}`);
  }
}
