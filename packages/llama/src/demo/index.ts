/**
 * @packageDocumentation
 * @lora/llama/demo: the embedded models and adapters behind `npm run demo`, the server's offline
 * default, the benchmarks and the playground — seeded Hugging Face checkpoints built in memory,
 * seeded PEFT adapters, a request queue, and the demo session (serve with and without LoRA, check
 * every request against its adapter merged into the weights).
 */
export { type CheckResult, checkAgainstMerged, tieMargin } from './check.js';
export { type DemoModel, demoAdapterFiles, demoAdapters, demoPreset, loadDemoModel } from './model.js';
export { DEMO_PRESETS, type DemoPreset, type DemoPresetName } from './presets.js';
export { demoRequests } from './requests.js';
export {
  DEMO_MAX_NUM_SEQS,
  type PassStats,
  passTokensPerSecond,
  runDemoSession,
  type SessionPhase,
  type SessionReport,
} from './session.js';
export { median, quantile, type RoundSpread, roundSpread } from './spread.js';
