import type { GPGPUProgram } from '@tensorflow/tfjs-backend-webgl';

/**
 * GLSL ES 3.0 fragment programs for tfjs-backend-webgl. WebGL has no shared memory or atomics, so
 * every output element is one fragment that loops over its own reduction. `enableShapeUniforms`
 * keeps sizes out of the source: the compiled program depends only on the slice count and on the
 * variant (one adapter or a per-token index), plus the few shape flags tfjs bakes in.
 */

/** In every program's source, so compiled programs can be counted in tfjs' cache (keys hold the source). */
export const PROGRAM_MARKER = '// lora-kernels program';

type Uniform = { name: string; type: 'int' | 'float' };

/** The token's slot: a uniform for single-adapter batches, else the index texture (ints stored as floats, rounded). */
const slotOf = (single: boolean) => (single ? 'slot' : 'int(round(getIdx(t)))');

/** Shrink `[S, T, R]`: one fragment per (slice, token, rank row) reducing over H. */
export class ShrinkProgram implements GPGPUProgram {
  readonly variableNames: string[];
  readonly outputShape: number[];
  readonly userCode: string;
  readonly enableShapeUniforms = true;
  readonly customUniforms: Uniform[];

  constructor(numSlices: number, numTokens: number, rank: number, single: boolean) {
    this.outputShape = [numSlices, numTokens, rank];
    const slices = Array.from({ length: numSlices }, (_, s) => `A${s}`);
    this.variableNames = ['X', ...slices, ...(single ? [] : ['Idx'])];
    this.customUniforms = [
      { name: 'hidden', type: 'int' },
      { name: 'scale', type: 'float' },
      ...(single ? [{ name: 'slot', type: 'int' as const }] : []),
    ];
    const perSlice = slices
      .map(
        (a, s) => `${s > 0 ? 'else ' : ''}if (s == ${s}) { for (int h = 0; h < hidden; h++) { sum += getX(t, h) * get${a}(slot, r, h); } }`,
      )
      .join('\n          ');
    this.userCode = `
      ${PROGRAM_MARKER}: shrink
      void main() {
        ivec3 c = getOutputCoords();
        int s = c.x;
        int t = c.y;
        int r = c.z;
        int slot = ${slotOf(single)};
        float sum = 0.0;
        if (slot >= 0) {
          ${perSlice}
        }
        setOutput(scale * sum);
      }
    `;
  }
}

/**
 * Expand `[T, W]`: one fragment per output element. Elements of LoRA tokens inside a slice's
 * columns get `(addInputs ? y : 0) + B_s[slot, o] · x[s, t]`; every other element is y, read
 * and written back unchanged.
 */
export class ExpandProgram implements GPGPUProgram {
  readonly variableNames: string[];
  readonly outputShape: number[];
  readonly userCode: string;
  readonly enableShapeUniforms = true;
  readonly customUniforms: Uniform[];

  constructor(outputShape: number[], numSlices: number, single: boolean) {
    this.outputShape = outputShape;
    const slices = Array.from({ length: numSlices }, (_, s) => `B${s}`);
    this.variableNames = ['Y', 'Xs', ...slices, ...(single ? [] : ['Idx'])];
    this.customUniforms = [
      { name: 'rank', type: 'int' },
      { name: 'offsetStart', type: 'int' },
      { name: 'addInputs', type: 'int' },
      ...slices.map((_, s) => ({ name: `width${s}`, type: 'int' as const })),
      ...(single ? [{ name: 'slot', type: 'int' as const }] : []),
    ];
    const perSlice = slices
      .map(
        (b, s) => `if (col >= start && col < start + width${s}) {
            int o = col - start;
            float sum = 0.0;
            for (int r = 0; r < rank; r++) { sum += get${b}(slot, o, r) * getXs(${s}, t, r); }
            value = (addInputs == 1 ? y : 0.0) + sum;
          }
          start += width${s};`,
      )
      .join('\n          ');
    this.userCode = `
      ${PROGRAM_MARKER}: expand
      void main() {
        ivec2 c = getOutputCoords();
        int t = c.x;
        int col = c.y;
        float y = getY(t, col);
        float value = y;
        int slot = ${slotOf(single)};
        if (slot >= 0) {
          int start = offsetStart;
          ${perSlice}
        }
        setOutput(value);
      }
    `;
  }
}
