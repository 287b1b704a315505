import { describe, expect, it } from 'vitest';
import { transposed } from './weights.js';

describe('transposed', () => {
  // Sizes around the 64-wide blocks and the 4-row steps, and degenerate ones.
  it.each([
    [1, 1],
    [1, 7],
    [7, 1],
    [3, 5],
    [4, 4],
    [5, 130],
    [63, 65],
    [64, 64],
    [130, 67],
    [257, 3],
  ])('[%i, %i] → [cols, rows]: out[c][r] = in[r][c]', (rows, cols) => {
    const data = Float32Array.from({ length: rows * cols }, (_, i) => i + 0.5);
    const out = transposed(data, rows, cols);
    expect(out.length).toBe(rows * cols);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) if (out[c * rows + r] !== data[r * cols + c]) expect.fail(`[${r}, ${c}]`);
    expect(transposed(out, cols, rows)).toEqual(data);
  });
});
