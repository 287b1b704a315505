import { LOAD_TARGET_MB_PER_S, type LoadResult, peakMB } from './load.js';
import { markdownTable } from './report.js';

const mb = (x: number): string => x.toFixed(x < 10 ? 1 : 0);

/** One table per backend: rate (median and range over rounds) and peak memory against its bound, per variant. */
export function loadTable(results: readonly LoadResult[]): string {
  const parts: string[] = [];
  for (const backend of [...new Set(results.map((r) => r.backend))]) {
    const rows = [
      ['checkpoint', 'MB', 'median MB/s', 'min–max MB/s', 'rounds', 'peak Δrss MB', 'peak ΔArrayBuffer MB', 'bound MB', 'within'],
    ];
    for (const r of results.filter((x) => x.backend === backend)) {
      rows.push([
        r.variant,
        mb(r.checkpointMB),
        mb(r.mbPerSec),
        `${mb(r.minMbPerSec)}–${mb(r.maxMbPerSec)}`,
        String(r.times.length),
        mb(r.peakRssMB),
        mb(r.peakArrayBuffersMB),
        mb(r.boundMB),
        peakMB(r) <= r.boundMB ? 'yes' : 'NO',
      ]);
    }
    const first = results.find((x) => x.backend === backend) as LoadResult;
    parts.push(`### loadModel(dir) on ${backend}: ${mb(first.modelMB)} MB of float32 weights\n\n${markdownTable(rows)}`);
  }
  return `${parts.join('\n\n')}\n\nMB = 2^20 bytes of checkpoint files (read from the page cache: the loader is timed, not the disk); target ≥ ${LOAD_TARGET_MB_PER_S} MB/s. Peak memory is the largest rise above a post-GC baseline while loading; its bound is the float32 model + the largest file + 10 % of the model. On engine wasm the weights are copied into the wasm heap (which never shrinks, and where linear layers also keep the [H, O] copy XNNPACK reads), so its memory is shown but not held to the bound.`;
}
