import './backends.js';
import { createLoRA, loadPeftAdapter } from '@lora/core';
import { adapterFiles, Engine } from '@lora/llama';
import { type DemoPreset, loadDemoModel } from '@lora/llama/demo';
import { quantile } from './measure.js';
import type { Progress } from './progress.js';

/**
 * Activated LoRA's point (PEFT `alora_invocation_tokens`, vLLM PR 19710): a request that invokes an
 * adapter after a long prompt reuses the base model's KV cache of everything before the invocation.
 * Measured as the time to first token of such a request on an engine with prefix caching, after a
 * base request with the same prompt, against the same two requests on an engine without it —
 * interleaved rounds, each round both engines, the order alternating.
 */
export interface PrefixReuseResult {
  readonly preset: string;
  /** Prompt tokens before the invocation (the base request's whole prompt). */
  readonly prefixTokens: number;
  /** The activated request's prompt: the prefix, the invocation and what follows it. */
  readonly promptTokens: number;
  /** Of those, tokens the cache served (whole blocks before the invocation). */
  readonly cachedTokens: number;
  /** Medians over rounds, ms. */
  readonly ttftCached: number;
  readonly ttftUncached: number;
  /** Median over rounds of cached / uncached TTFT, and the 25th and 75th percentiles. */
  readonly ratio: number;
  readonly spread: { readonly low: number; readonly high: number };
  /** What the ratio must be, at least: the share of prompt tokens still prefilled (attention over the cached keys comes on top). */
  readonly mustCost: number;
}

export const prefixReuseSteps = (rounds: number): number => 2 + rounds;

export async function runPrefixReuseBench(preset: DemoPreset, opts: { prefixTokens: number; rounds: number; progress?: Progress }) {
  const rt = await createLoRA({ backend: 'cpu', maxLoras: 1, maxLoraRank: 16, maxNumTokens: 2 * opts.prefixTokens });
  try {
    const { model, config } = await loadDemoModel(preset, rt);
    try {
      const invocation = [11, 12];
      const targets = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
      const spec = { id: 'alora', rank: 16, alpha: 32, targets, invocationTokens: invocation };
      rt.adapters.register(loadPeftAdapter({ id: 'alora', ...adapterFiles(config, spec, 900) }));
      // Token ids above the invocation's, so it occurs only where it is put.
      const prefix = Array.from({ length: opts.prefixTokens }, (_, i) => 20 + ((i * 37) % (config.vocabSize - 20)));
      const invoked = [...prefix, ...invocation, 30, 31, 32, 33, 34, 35];
      const sampling = { temperature: 0, maxTokens: 1, ignoreEos: true };
      const engines = [true, false].map(
        (enablePrefixCaching) => new Engine({ model, enablePrefixCaching, maxNumBatchedTokens: 2 * opts.prefixTokens }),
      );
      const round = async (engine: Engine) => {
        engine.resetPrefixCache();
        await engine.add({ prompt: prefix, sampling }).result;
        const r = await engine.add({ prompt: invoked, adapter: 'alora', sampling }).result;
        return { ms: r.timings.firstTokenMs, cached: r.cachedTokens };
      };
      // Warm-up: first prefill shapes grow the wasm heap and pack XNNPACK weights.
      for (const e of engines) {
        await round(e);
        opts.progress?.step('prefix reuse: warm-up');
      }
      const times = { cached: [] as number[], uncached: [] as number[] };
      let cachedTokens = 0;
      for (let i = 0; i < opts.rounds; i++) {
        const order = i % 2 === 0 ? [0, 1] : [1, 0];
        for (const k of order) {
          const r = await round(engines[k] as Engine);
          if (k === 0) {
            times.cached.push(r.ms);
            cachedTokens = r.cached;
          } else times.uncached.push(r.ms);
        }
        opts.progress?.step(`prefix reuse: round ${i + 1}/${opts.rounds}`);
      }
      for (const e of engines) await e.close();
      const ratios = times.cached.map((c, i) => c / (times.uncached[i] as number));
      return {
        preset: preset.name,
        prefixTokens: prefix.length,
        promptTokens: invoked.length,
        cachedTokens,
        ttftCached: quantile(times.cached, 0.5),
        ttftUncached: quantile(times.uncached, 0.5),
        ratio: quantile(ratios, 0.5),
        spread: { low: quantile(ratios, 0.25), high: quantile(ratios, 0.75) },
        mustCost: (invoked.length - cachedTokens) / invoked.length,
      } satisfies PrefixReuseResult;
    } finally {
      model.dispose();
    }
  } finally {
    rt.dispose();
  }
}

export function prefixReuseTable(r: PrefixReuseResult): string {
  const pct = (v: number) => `${(100 * v).toFixed(1)} %`;
  return [
    '| model | prompt (prefix + invocation + rest) | cached | TTFT without cache ms | TTFT with cache ms | with / without (median [IQR]) | must cost at least |',
    '| --- | --- | ---: | ---: | ---: | --- | ---: |',
    `| demo ${r.preset}, cpu | ${r.prefixTokens} + 2 + 6 = ${r.promptTokens} | ${r.cachedTokens} | ${r.ttftUncached.toFixed(1)} | ${r.ttftCached.toFixed(1)} | ${pct(r.ratio)} [${pct(r.spread.low)}, ${pct(r.spread.high)}] | ${pct(r.mustCost)} |`,
  ].join('\n');
}
