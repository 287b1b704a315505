import { tokenBuckets } from '@lora/core/backend';
import { inherentShare, type LoRAStepShare } from '@lora/llama';
import type { DemoPreset } from '@lora/llama/demo';
import { type GridKind, initWasm, type NodeBackend } from './backends.js';
import { runInChromium } from './browser.js';
import type { BrowserTask } from './browser-task.js';
import { type GridResult, runGrid } from './grid.js';
import { HEATMAPS, type HeatmapAxes, type HeatmapResult, runHeatmap } from './heatmap.js';
import { tpuSimHeatmap } from './heatmap-tpu.js';
import { copyRate, type Target } from './kernels.js';
import type { BackendSpec, KernelShape } from './methods.js';
import type { Progress } from './progress.js';

/** What the grid and heatmap sections run: CPU sizes, (smaller) GPU sizes, and where. */
export interface SweepPlan {
  grid?: { cpu: KernelShape[]; gpu: KernelShape[]; sim: KernelShape[] };
  heatmap?: { cpu: HeatmapAxes; gpu: HeatmapAxes; preset: DemoPreset; ranks: readonly number[] };
  rounds: number;
  budgetMs: number;
  wasm: boolean;
  /**
   * The first-party backends started in this process (`probeNodeBackends`): besides cpu (measured
   * above the others, with its engine, as the roofline's reference), each one that started runs the
   * grid its declarations call for. GPU ones are left out of the list under `--no-gpu`.
   */
  nodeBackends: readonly NodeBackend[];
  /** Chromium is installed: webgl and webgpu run there. */
  browser: boolean;
}

export interface SweepResults {
  grids: GridResult[];
  heatmaps: HeatmapResult[];
  /** The CPU backend's grid and the copy rate measured beside it: the roofline's inputs. */
  cpuGrid?: GridResult;
  /** The CPU backend's heatmap (also in `heatmaps`): issue #17's slowdown-vs-inherent-share target reads it. */
  cpuHeatmap?: HeatmapResult;
  copyGBps?: number;
}

/** The naive composition's gathers above this are skipped (a T = 2048, rank 64 point would need 4 GB). */
const NAIVE_LIMIT_BYTES = 512 * 2 ** 20;
/** tfjs-wasm's heap ends at 4 GB: a 2 GB KV cache plus one step's copies does not fit. */
const KV_LIMIT_BYTES = 1.5 * 2 ** 30;

const BROWSER_BACKENDS = ['webgl', 'webgpu'];

/** Which of the plan's grids a backend of each kind sweeps, and how its label says where it ran. */
const GRID_SIZES: Record<GridKind, 'cpu' | 'gpu' | 'sim'> = { host: 'cpu', gpu: 'gpu', 'cost-model': 'sim' };
const GRID_LABELS: Record<GridKind, string> = { host: 'node', gpu: 'node', 'cost-model': 'cost model' };

/** Grid points a plan sweeps in this process (for the progress bar). */
export function nodeGridSteps(grid: NonNullable<SweepPlan['grid']>, backends: readonly NodeBackend[]): number {
  return grid.cpu.length + othersThanCpu(backends).reduce((n, b) => n + grid[GRID_SIZES[b.kind]].length, 0);
}

/** The probed backends that get a grid of their own: every one that started, but cpu (measured first, with its engine). */
const othersThanCpu = (backends: readonly NodeBackend[]) =>
  backends.filter((b): b is NodeBackend & { kind: GridKind } => b.name !== 'cpu' && b.kind !== undefined);

export async function runGridsAndHeatmaps(plan: SweepPlan, progress: Progress, log: (s: string) => void): Promise<SweepResults> {
  const out: SweepResults = { grids: [], heatmaps: [] };
  const engine = plan.wasm && (await initWasm()) ? 'wasm' : 'js';
  const cpu: BackendSpec = { id: 'cpu', label: `cpu (engine ${engine})`, backend: 'cpu', backendOptions: { engine } };
  const step = (label: string) => progress.step(label);
  const fromBrowser = async (task: BrowserTask) => {
    const results = await runInChromium(BROWSER_BACKENDS, task, step);
    for (const r of results) if (r.error) log(`${r.backend} in Chromium: ${r.error}`);
    return results;
  };

  if (plan.grid) {
    const opts = { rounds: plan.rounds, budgetMs: plan.budgetMs, naiveLimitBytes: NAIVE_LIMIT_BYTES, onPoint: step };
    out.copyGBps = copyRate();
    out.cpuGrid = await runGrid(cpu, plan.grid.cpu, opts);
    out.grids.push(out.cpuGrid);
    for (const b of othersThanCpu(plan.nodeBackends)) {
      const spec: BackendSpec = { id: b.name, label: `${b.name} (${GRID_LABELS[b.kind]})`, backend: b.name };
      out.grids.push(await runGrid(spec, plan.grid[GRID_SIZES[b.kind]], opts));
    }
    if (plan.browser) {
      const task: BrowserTask = {
        kind: 'grid',
        shapes: plan.grid.gpu,
        rounds: plan.rounds,
        budgetMs: plan.budgetMs,
        naiveLimitBytes: NAIVE_LIMIT_BYTES,
      };
      for (const r of await fromBrowser(task)) if (r.grid) out.grids.push(r.grid);
    }
  }
  if (plan.heatmap) {
    const { preset, ranks } = plan.heatmap;
    const mixed = ranks.length > 1 ? { ranks } : {};
    const sizes = { rounds: plan.rounds, adapters: 8, rank: Math.max(...ranks), ...mixed, kvLimitBytes: KV_LIMIT_BYTES };
    out.cpuHeatmap = await runHeatmap(cpu, preset, plan.heatmap.cpu, { ...sizes, onCell: step });
    out.heatmaps.push(out.cpuHeatmap);
    // Priced, not timed: milliseconds for the whole grid.
    out.heatmaps.push(tpuSimHeatmap(HEATMAPS.full, 'all-on'), tpuSimHeatmap(HEATMAPS.full, 'einsum'));
    // webgpu's heatmap comes from Chromium: in Node, Dawn's read-back after each decode step (the
    // model reads its logits) swings by ±50 % on SwiftShader, more than the slowdown measured.
    if (plan.browser) {
      const task: BrowserTask = { kind: 'heatmap', preset, axes: plan.heatmap.gpu, ...sizes };
      for (const r of await fromBrowser(task)) if (r.heatmap) out.heatmaps.push(r.heatmap);
    }
  }
  return out;
}

/**
 * Targets over the grid, per backend: our kernel beats the naive composition and the per-adapter
 * loop at every point (worst point shown), and GPU backends compile no more programs over the whole
 * grid than there are token buckets (sizes travel as uniforms).
 */
export function sweepTargets(s: SweepResults): Target[] {
  const targets: Target[] = [];
  for (const g of s.grids) {
    // A simulator's wall-clock is not its device's: its targets are the cost model's (its own report).
    if (g.costModel) continue;
    const worst = (f: (p: GridResult['points'][number]) => number | undefined) => {
      const values = g.points.map(f).filter((v): v is number => v !== undefined);
      return values.length > 0 ? Math.min(...values) : undefined;
    };
    const naive = worst((p) => p.naiveOverLoRA);
    const loop = worst((p) => p.loopOverLoRA);
    const where = `grid, ${g.points.length} points`;
    if (naive !== undefined)
      targets.push({ name: `${g.backend}: worst point vs naive composition`, shape: where, value: naive, goal: '≥ 1×', met: naive >= 1 });
    if (loop !== undefined)
      targets.push({ name: `${g.backend}: worst point vs per-adapter loop`, shape: where, value: loop, goal: '≥ 1×', met: loop >= 1 });
    if (!g.compilesPrograms) continue;
    // The static-shape bound of the GPU backend issues: no more programs than token buckets for
    // T up to 4096, whatever the batches. Counted over everything this process or page ran
    // (kernel contests, every grid point), since tfjs compiles a program once per process.
    const buckets = tokenBuckets(4096).length;
    targets.push({
      name: `${g.backend}: programs compiled (whole run)`,
      shape: where,
      value: g.programsTotal,
      goal: `≤ ${buckets} (token buckets)`,
      met: g.programsTotal <= buckets,
      unit: 'count',
    });
  }
  const fixed = s.cpuGrid && s.copyGBps ? fixedCostAtOneToken(s.cpuGrid, s.copyGBps) : undefined;
  if (fixed !== undefined && s.cpuGrid) {
    const floor = fixed.floorMicros === undefined ? '' : `; tf.add(y, y) there: ${fixed.floorMicros.toFixed(1)} µs beyond its bytes`;
    targets.push({
      name: `${s.cpuGrid.backend}: one call at T = 1, beyond its bytes at the copy rate`,
      shape: `grid, worst of ${fixed.points} T = 1 points${floor}`,
      value: fixed.micros,
      goal: '≤ 10 µs',
      met: fixed.micros <= 10,
      unit: 'µs',
    });
  }
  const worst = s.cpuHeatmap ? worstCellOverInherent(s.cpuHeatmap) : undefined;
  if (worst !== undefined && s.cpuHeatmap) {
    targets.push({
      name: `${s.cpuHeatmap.backend}: heatmap slowdown / (1.5 × must + 1 point)`,
      shape: `model "${s.cpuHeatmap.preset}", worst of ${worst.cells} cells (${worst.where})`,
      value: worst.ratio,
      goal: '≤ 1×',
      met: worst.ratio <= 1,
    });
  }
  return targets;
}

/**
 * Issue #17's model-level target: in every measured heatmap cell the slowdown is at most 1.5 × what
 * LoRA must cost there (its inherent share, the larger of bytes and FLOPs) + 1 point. The worst
 * cell as slowdown over that bound; a cell "within noise" counts as no slowdown.
 */
export function worstCellOverInherent(h: HeatmapResult): { ratio: number; cells: number; where: string } | undefined {
  const cells = h.cells.filter((c) => c.inherent !== undefined && c.spread !== undefined);
  if (cells.length === 0) return undefined;
  let ratio = -Infinity;
  let where = '';
  for (const c of cells) {
    const r = (c.withinNoise ? 0 : c.slowdown) / (1.5 * inherentShare(c.inherent as LoRAStepShare) + 0.01);
    if (r > ratio) [ratio, where] = [r, `input ${c.length} × ${c.concurrency}`];
  }
  return { ratio, cells: cells.length, where };
}

/**
 * Issue #17's decode target: at T = 1 a call costs its bytes (A and B of its adapter, x, y) at the
 * copy rate plus a fixed cost (dispatch, checks, the segment walk) of at most 10 µs. The worst of
 * the grid's T = 1 points: median time minus bytes / copy rate, in µs. Beside it, the same for
 * `tf.add(y, y)` at that point (its bytes: y twice and the output), the fixed cost of any tfjs op
 * there: the part of ours that dispatch and cold caches set, not our code.
 */
function fixedCostAtOneToken(g: GridResult, copyGBps: number): { micros: number; points: number; floorMicros?: number } | undefined {
  const ones = g.points.filter((p) => p.shape.numTokens === 1);
  if (ones.length === 0) return undefined;
  const beyond = (ms: number, bytes: number) => ms * 1000 - (bytes / (copyGBps * 1e9)) * 1e6;
  let worst = ones[0] as (typeof ones)[number];
  for (const p of ones) if (beyond(p.lora.median, p.bytes) > beyond(worst.lora.median, worst.bytes)) worst = p;
  const micros = beyond(worst.lora.median, worst.bytes);
  if (worst.floor === undefined) return { micros, points: ones.length };
  return { micros, points: ones.length, floorMicros: beyond(worst.floor.median, 3 * 4 * worst.shape.out) };
}
