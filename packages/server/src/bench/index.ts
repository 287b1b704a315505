/**
 * @packageDocumentation
 * @lora/server/bench: the end-to-end serving benchmark (through HTTP with a real client loop).
 */

export {
  type AdaptersScaleOptions,
  type AdaptersScaleResult,
  type AdapterTier,
  adaptersScaleSteps,
  adaptersScaleTable,
  type ColdStartProbe,
  QUICK_ADAPTERS_SCALE,
  runAdaptersScaleBench,
  TINY_ADAPTERS_SCALE,
  type TrafficResult,
} from './adapters-scale.js';
export { cellsFile } from './cells-file.js';
export type { CellResult, Overhead, SlowdownCell } from './report.js';
export {
  QUICK_SERVE_BENCH,
  runServeBench,
  type ServeBenchJson,
  type ServeBenchOptions,
  type ServeBenchResult,
  serveBenchSteps,
  TINY_SERVE_BENCH,
} from './serve-bench.js';
export { percentile, type StreamTiming } from './stats.js';
