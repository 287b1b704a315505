import { checkBackendOptions, describeValue, LoRAError } from '@lora/core/backend';
import { CHIPS, type ChipSpec, DEFAULT_STEP_OVERHEAD_SECONDS } from './chips.js';

/**
 * vLLM PR 15655's optimisations, each one switch, in the order vLLM PR 15655 introduced them. Every
 * combination computes the same numbers (bit for bit: see kernels/lora-matmul.ts); they change
 * only the program that runs, and so the cost model's bytes, FLOPs, grid steps and compiles.
 */
export interface TpuSimFlags {
  /** Tuned blocks (bT = clamp(roundUp(T,16),16,128), 256-wide lora blocks, 256–1024 deep feature blocks) instead of the first kernel's 16×128×128. */
  blockTuning: boolean;
  /** One mask per adapter (`idx == i` over the token block) and one matmul per adapter, instead of one masked matmul per token. */
  fastMask: boolean;
  /**
   * Per token block, only adapters present in the block get a matmul (a bitmask from the prefetched
   * index); a step with none issues no MXU work. The zero slot of -1 tokens never needs one. Without
   * `fastMask` it drops the per-token matmuls of -1 tokens.
   */
  blockSkip: boolean;
  /** Pack `256 / rank` adapters side by side in one 256-wide MXU tile (rank padded per vLLM PR 15655's rule); a token's mask selects its lane. */
  laning: boolean;
  /** Separate shrink and expand kernels with their own block shapes instead of one generic BGMV kernel for both directions. */
  splitShrinkExpand: boolean;
  /** A batch where every token uses one adapter runs a plain dot on that adapter's weights: no masks. */
  singleNoMask: boolean;
  /** Expand weights stored `[N, rank, out]` at load time instead of transposed by an XLA op on every call. */
  preTransposedExpand: boolean;
  /** Tokens padded to core's token bucket (so a bounded set of programs compiles) instead of to the next multiple of the token block. */
  bucketing: boolean;
}

/** Every key of {@link TpuSimFlags}, in the order vLLM PR 15655 introduced the optimisations: the flags `backendOptions.flags` accepts. */
export const FLAG_NAMES: readonly (keyof TpuSimFlags)[] = [
  'blockTuning',
  'fastMask',
  'blockSkip',
  'laning',
  'splitShrinkExpand',
  'singleNoMask',
  'preTransposedExpand',
  'bucketing',
];

/**
 * 'all-off': vLLM PR 15655's first fused BGMV kernel. 'all-on': every optimisation (vLLM PR 15655's final
 * Pallas kernels). 'einsum': what vLLM finally merged, `einsum("td,tX,Xld->tl", x, one_hot(idx), loras)`
 * as one XLA op, with bucketed token counts.
 */
export type TpuSimPreset = 'all-off' | 'all-on' | 'einsum';

/** Which programs run: vLLM PR 15655's Pallas kernels (shaped by the flags) or the one-hot einsum as one XLA op. */
export type TpuSimVariant = 'pallas' | 'einsum';

/** `LoRAConfig.backendOptions` for backend "tpu-sim" (plain JSON). */
export interface TpuSimBackendOptions {
  /** Starting point for `flags`; default 'all-on'. */
  preset?: TpuSimPreset;
  /** Overrides of single flags on top of the preset. */
  flags?: Partial<TpuSimFlags>;
  /** Chip the cost model prices: 'v5e' or 'v6e' (default). */
  chip?: ChipSpec['name'];
  /** Cost of one grid step in microseconds (default 0.35, the figure the Pallas TPU docs quote). */
  stepOverheadMicros?: number;
}

/** `backendOptions` after validation and defaults: what a {@link TpuSim} runs with. */
export interface ResolvedTpuSimOptions {
  /** Program family, set by the preset. */
  readonly variant: TpuSimVariant;
  /** Every flag resolved: the preset's values with the `flags` overrides applied. */
  readonly flags: Readonly<TpuSimFlags>;
  /** The chip whose figures price every op (MXU tile, peak FLOP/s, HBM bandwidth, VMEM). */
  readonly chip: ChipSpec;
  /** Cost of one grid step, seconds (`stepOverheadMicros` × 1e-6). */
  readonly stepOverheadSeconds: number;
}

const allFlags = (value: boolean): TpuSimFlags => Object.fromEntries(FLAG_NAMES.map((name) => [name, value])) as unknown as TpuSimFlags;

/** Starting point of each {@link TpuSimPreset}: its program family and flag values, before `flags` overrides. */
export const PRESETS: Readonly<
  Record<
    TpuSimPreset,
    {
      /** Program family the preset runs. */
      variant: TpuSimVariant;
      /** Flag values before overrides ('einsum': only `bucketing` on, the only flag that applies to it). */
      flags: TpuSimFlags;
    }
  >
> = Object.freeze({
  'all-off': { variant: 'pallas', flags: allFlags(false) },
  'all-on': { variant: 'pallas', flags: allFlags(true) },
  // The einsum has no blocks, masks or lanes: only bucketing (static shapes) applies to it.
  einsum: { variant: 'einsum', flags: { ...allFlags(false), bucketing: true } },
});

const KNOWN = ['preset', 'flags', 'chip', 'stepOverheadMicros'];

/** Validates `backendOptions`; anything unknown or mistyped is `LoRAError('E_CONFIG')`. */
export function resolveTpuSimOptions(options: Readonly<Record<string, unknown>> = {}): ResolvedTpuSimOptions {
  if (options === null || typeof options !== 'object') {
    throw new LoRAError('E_CONFIG', `backendOptions for "tpu-sim" must be an object, got ${describeValue(options)}`);
  }
  checkBackendOptions('tpu-sim', options, KNOWN);
  const {
    preset = 'all-on',
    flags = {},
    chip = 'v6e',
    stepOverheadMicros = DEFAULT_STEP_OVERHEAD_SECONDS * 1e6,
  } = options as TpuSimBackendOptions;
  if (!Object.hasOwn(PRESETS, preset)) {
    throw new LoRAError(
      'E_CONFIG',
      `backendOptions.preset must be one of ${Object.keys(PRESETS).join(', ')}; got ${describeValue(preset)}`,
    );
  }
  if (!Object.hasOwn(CHIPS, chip)) {
    throw new LoRAError('E_CONFIG', `backendOptions.chip must be one of ${Object.keys(CHIPS).join(', ')}; got ${describeValue(chip)}`);
  }
  if (typeof stepOverheadMicros !== 'number' || !(stepOverheadMicros >= 0) || !Number.isFinite(stepOverheadMicros)) {
    throw new LoRAError(
      'E_CONFIG',
      `backendOptions.stepOverheadMicros must be a finite number ≥ 0; got ${describeValue(stepOverheadMicros)}`,
    );
  }
  if (flags === null || typeof flags !== 'object' || Array.isArray(flags)) {
    throw new LoRAError('E_CONFIG', `backendOptions.flags must be an object of booleans; got ${describeValue(flags)}`);
  }
  const base = PRESETS[preset];
  const merged: TpuSimFlags = { ...base.flags };
  const einsumOnly = new Set<string>(['bucketing']);
  for (const [name, value] of Object.entries(flags)) {
    if (!(FLAG_NAMES as readonly string[]).includes(name)) {
      throw new LoRAError(
        'E_CONFIG',
        `unknown flag backendOptions.flags.${name} for backend "tpu-sim"; expected only ${FLAG_NAMES.join(', ')}`,
      );
    }
    if (typeof value !== 'boolean') {
      throw new LoRAError('E_CONFIG', `backendOptions.flags.${name} must be a boolean; got ${describeValue(value)}`);
    }
    if (base.variant === 'einsum' && !einsumOnly.has(name) && value) {
      // The einsum has no blocks, masks or lanes: a kernel flag there would be silently meaningless.
      throw new LoRAError('E_CONFIG', `backendOptions.flags.${name} does not apply to preset "einsum"; only bucketing does`);
    }
    merged[name as keyof TpuSimFlags] = value;
  }
  return Object.freeze({
    variant: base.variant,
    flags: Object.freeze(merged),
    chip: CHIPS[chip],
    stepOverheadSeconds: stepOverheadMicros * 1e-6,
  });
}
