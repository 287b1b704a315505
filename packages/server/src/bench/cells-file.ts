import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { CellResult } from './report.js';

/**
 * An `onCell` for {@link runServeBench} that writes each measurement to `file` as one JSON line the
 * moment it ends (the file is emptied first): the full grid runs for over an hour on a CPU, and a
 * run stopped part way keeps every measurement it finished.
 */
export function cellsFile(file: string): (cell: CellResult) => void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, '');
  return (cell) => appendFileSync(file, `${JSON.stringify(cell)}\n`);
}
