import type { DemoPreset } from '@lora/llama/demo';
import type { GridResult } from './grid.js';
import type { HeatmapAxes, HeatmapResult } from './heatmap.js';
import type { Sample } from './measure.js';
import type { KernelShape } from './methods.js';

/** What the Node CLI asks the bench page in Chromium to run, per backend (sent as JSON in the URL). */
export type BrowserTask =
  | { kind: 'contest'; shapes: KernelShape[]; rounds: number }
  | { kind: 'grid'; shapes: KernelShape[]; rounds: number; budgetMs: number; naiveLimitBytes: number }
  | {
      kind: 'heatmap';
      preset: DemoPreset;
      axes: HeatmapAxes;
      rounds: number;
      adapters: number;
      rank: number;
      ranks?: readonly number[];
      kvLimitBytes: number;
    };

/** What the page hands back in `window.__loraBench`: the field named by the task's kind, or the error. */
export interface BrowserResult {
  backend: string;
  contest?: Array<{ shape: KernelShape; samples: Record<string, Sample> }>;
  grid?: GridResult;
  heatmap?: HeatmapResult;
  error?: string;
}
