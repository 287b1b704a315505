import { describe, expect, it } from 'vitest';
import { parseModelConfig } from './config.js';
import { transposeInto, WeightTaker } from './weights.js';

const transposed = (data: Float32Array, rows: number, cols: number) => {
  const out = new Float32Array(rows * cols);
  transposeInto(data, rows, cols, out);
  return out;
};

describe('transposeInto', () => {
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

describe('WeightTaker.transposed', () => {
  const config = parseModelConfig(
    {
      architectures: ['LlamaForCausalLM'],
      hidden_size: 8,
      intermediate_size: 16,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      num_key_value_heads: 1,
      vocab_size: 32,
    },
    'a test config',
  );
  const a = Float32Array.from({ length: 6 }, (_, i) => i);
  const b = Float32Array.from({ length: 12 }, (_, i) => 100 + i);

  it('with reuseScratch (a backend that copies host arrays) every result is a view of one growing buffer', () => {
    const take = new WeightTaker(config, new Map(), false, true);
    const first = take.transposed(b, 3, 4);
    expect(Array.from(first)).toEqual([100, 104, 108, 101, 105, 109, 102, 106, 110, 103, 107, 111]);
    const second = take.transposed(a, 2, 3);
    expect(second.buffer).toBe(first.buffer);
    expect(Array.from(second)).toEqual([0, 3, 1, 4, 2, 5]);
  });

  it('without it every result is an array of its own (the backend may keep it)', () => {
    const take = new WeightTaker(config, new Map(), false);
    const first = take.transposed(b, 3, 4);
    const second = take.transposed(a, 2, 3);
    expect(second.buffer).not.toBe(first.buffer);
    expect(Array.from(first)).toEqual([100, 104, 108, 101, 105, 109, 102, 106, 110, 103, 107, 111]);
  });
});
