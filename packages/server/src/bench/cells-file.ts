import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { CellResult } from './report.js';

/**
 * An `onCell` for {@link runServeBench} that writes each cell to `file` as one JSON line the moment
 * it is measured (the file is emptied first): the full grid runs for hours on a CPU, and a run
 * stopped part way keeps every cell it finished.
 */
export function cellsFile(file: string): (cell: CellResult) => void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, '');
  return (cell) => appendFileSync(file, `${JSON.stringify(cell)}\n`);
}
