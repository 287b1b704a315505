import type { GPGPUProgram } from '@tensorflow/tfjs-backend-webgl';

/**
 * GLSL ES 3.0 fragment programs for tfjs-backend-webgl. WebGL has no shared memory or atomics, so
 * every output texel is one fragment that loops over its own reduction. All programs read and
 * write packed RGBA textures: a texel holds a 2×2 block (rows r, r+1 × columns c, c+1), so one
 * fetch brings four values and one fragment computes two tokens × two outputs. On SwiftShader
 * that made shrink + expand 3× faster than one float per texel (apps/bench).
 * `enableShapeUniforms` keeps sizes out of the source: a program depends only on its slice count
 * and variant (one adapter or a per-token index), plus the few shape flags tfjs bakes in.
 */

/** In every program's source, so compiled programs can be counted in tfjs' cache (keys hold the source). */
export const PROGRAM_MARKER = '// lora-kernels program';

/**
 * One entry of a program's `customUniforms` (tfjs `GPGPUProgram`): a scalar GLSL uniform declared
 * as `uniform <type> <name>;`. The kernel passes the values in the same order to
 * `runWebGLProgram`'s `customUniformValues`.
 */
export type Uniform = {
  /** The GLSL identifier the program's source reads. */
  name: string;
  /** Its GLSL type: `int` for sizes, offsets, flags, slots and ranks, `float` for `scale`. */
  type: 'int' | 'float';
  /** Declares an array, `uniform <type> <name>[arrayIndex];` (the slots' ranks), set from one value list. */
  arrayIndex?: number;
};

/**
 * The slots of a block's two tokens t, t+1: a uniform for single-adapter batches, else one texel
 * of the index (ints stored as floats, rounded; the index is padded so t + 1 is always inside it).
 */
const slotsOf = (single: boolean) =>
  single ? 'int slot0 = slot; int slot1 = slot;' : 'vec4 ix = getIdx(t); int slot0 = int(round(ix.x)); int slot1 = int(round(ix.y));';

/**
 * The true rank of slot `a` (issue #17: a slot is read only up to it, so a rank-8 adapter in a
 * `maxLoraRank` 32 runtime costs rank 8, and its zero padding is never used): the `slotRank`
 * uniform for single-adapter batches, else the slot's entry of the `ranks` uniform array (one int
 * per slot, an array uniform: ranks never change the program's source).
 */
const rankOf = (single: boolean, a: string) => (single ? 'slotRank' : `ranks[${a}]`);

/** The rank uniforms {@link rankOf} reads: `slotRank`, or `ranks[L]`. */
const rankUniforms = (single: boolean, slots: number): Uniform[] =>
  single ? [{ name: 'slotRank', type: 'int' }] : [{ name: 'ranks', type: 'int', arrayIndex: slots }];

/**
 * GLSL helper: texel `v` of rank pair i (components: first row at ranks 2i, 2i+1, then the second
 * row at the same ranks) with the components past each row's true rank replaced by 0. `mix` with a
 * bvec selects, so a NaN in the padding is dropped, not multiplied (0 · NaN is NaN).
 */
const KEEP_RANKS = `vec4 keepRanks(vec4 v, int i, int kFirst, int kSecond) {
        return mix(vec4(0.0), v, bvec4(2 * i < kFirst, 2 * i + 1 < kFirst, 2 * i < kSecond, 2 * i + 1 < kSecond));
      }`;

/**
 * One reduction step over a pair of the shared dimension, for the two tokens of a block: `x` is
 * the tokens' texel (t, t+1 × k, k+1), `p` and `q` the weight texels (rows j, j+1 × k, k+1) of
 * token t's and token t+1's adapter. Result components: (t, j), (t, j+1), (t+1, j), (t+1, j+1).
 * When both tokens share an adapter (most blocks: tokens arrive grouped by request) `q` is `p`
 * and the second fetch is skipped.
 */
function pairLoop(count: string, xFetch: string, wFetch: (slot: string) => string, masked = false): string {
  // Expand reduces over the rank: where a pair reaches past a token's rank (the last pairs of the
  // smaller rank), both operands are masked (B's padding, and Xs's, which an embedding's gathered
  // A row fills). Shrink reduces over H and zeroes its rows past the rank afterwards instead.
  const mask = (p: string, q: string | null) =>
    masked
      ? `if (2 * i + 2 > kMin) {
                x = keepRanks(x, i, kA, kB);
                ${p} = keepRanks(${p}, i, kA, kA);${
                  q
                    ? `
                ${q} = keepRanks(${q}, i, kB, kB);`
                    : ''
                }
              }`
      : '';
  return `if (a0 == a1) {
            for (int i = 0; i < ${count}; i++) {
              vec4 x = ${xFetch};
              vec4 p = ${wFetch('a0')};
              ${mask('p', null)}
              sum += x.xxzz * p.xzxz + x.yyww * p.ywyw;
            }
          } else {
            for (int i = 0; i < ${count}; i++) {
              vec4 x = ${xFetch};
              vec4 p = ${wFetch('a0')};
              vec4 q = ${wFetch('a1')};
              ${mask('p', 'q')}
              sum += x.xxzz * vec4(p.xz, q.xz) + x.yyww * vec4(p.yw, q.yw);
            }
          }`;
}

/** Shrink `[S, T, R]` (packed): one fragment per (slice, token pair, rank pair) reducing over H. */
export class ShrinkProgram implements GPGPUProgram {
  /**
   * The input textures in the order the kernel passes them: `X` (`[T, H]`), one `A<s>` per slice
   * (`[L, R, H]`), then `Idx` (the padded token→slot index) unless the batch has a single adapter.
   * tfjs generates a `get<Name>(…)` sampler for each.
   */
  readonly variableNames: string[];
  /** `[S, T, R]`: slices × tokens × rank, the tensor tfjs allocates for the result. */
  readonly outputShape: number[];
  /**
   * The GLSL `main()` that tfjs wraps with its samplers, uniforms and `setOutput`. It opens with the
   * `// lora-kernels program` marker, by which the backend's `stats()` counts compiled programs.
   */
  readonly userCode: string;
  /**
   * tfjs-backend-webgl's shape-uniform mode: shapes travel as uniforms instead of constants in the
   * source, so the compiled program varies only with the slice count, the variant (one adapter or
   * an index) and the few shape flags tfjs still bakes in, not with the sizes.
   */
  readonly enableShapeUniforms = true;
  readonly packedInputs = true;
  readonly packedOutput = true;
  /**
   * `hiddenPairs` (⌈H / 2⌉, the reduction's texel count), `scale`, for single-adapter batches
   * `slot`, then the true ranks (`slotRank`, or `ranks[L]`); values come from the kernel in this order.
   */
  readonly customUniforms: Uniform[];

  /**
   * @param numSlices - S: how many A stacks (one output plane each), 1 for a plain projection.
   * @param numTokens - T, the batch's token count.
   * @param rank - R, the LoRA rank.
   * @param single - True when every token uses one adapter: the slot is the `slot` uniform and no
   *   index texture is bound; false reads each token's slot from `Idx`.
   * @param slots - L, the slots per stack: the length of the `ranks` uniform (unused when `single`).
   */
  constructor(numSlices: number, numTokens: number, rank: number, single: boolean, slots: number) {
    this.outputShape = [numSlices, numTokens, rank];
    const slices = Array.from({ length: numSlices }, (_, s) => `A${s}`);
    this.variableNames = ['X', ...slices, ...(single ? [] : ['Idx'])];
    this.customUniforms = [
      { name: 'hiddenPairs', type: 'int' },
      { name: 'scale', type: 'float' },
      ...(single ? [{ name: 'slot', type: 'int' as const }] : []),
      ...rankUniforms(single, slots),
    ];
    const perSlice = slices
      .map(
        (a, s) => `${s > 0 ? 'else ' : ''}if (s == ${s}) {
          ${pairLoop('hiddenPairs', 'getX(t, 2 * i)', (slot) => `get${a}(${slot}, r, 2 * i)`)}
        }`,
      )
      .join('\n        ');
    this.userCode = `
      ${PROGRAM_MARKER}: shrink
      void main() {
        ivec3 c = getOutputCoords();
        int s = c.x;
        int t = c.y;
        int r = c.z;
        ${slotsOf(single)}
        // A token without an adapter borrows its neighbour's (its result is zeroed below).
        int a0 = slot0 >= 0 ? slot0 : max(slot1, 0);
        int a1 = slot1 >= 0 ? slot1 : a0;
        // Each token's rows past its slot's true rank are padding (0 for a token without LoRA).
        int k0 = slot0 >= 0 ? ${rankOf(single, 'slot0')} : 0;
        int k1 = slot1 >= 0 ? ${rankOf(single, 'slot1')} : 0;
        vec4 sum = vec4(0.0);
        if (r < k0 || r < k1) {
        ${perSlice}
        }
        vec4 result = scale * sum;
        // Assigned, not multiplied by a mask: 0 · inf (or the padding's NaN) would be NaN.
        if (r >= k0) result.x = 0.0;
        if (r + 1 >= k0) result.y = 0.0;
        if (r >= k1) result.z = 0.0;
        if (r + 1 >= k1) result.w = 0.0;
        setOutput(result);
      }
    `;
  }
}

/**
 * Expand `[T, W]` (packed): one fragment per 2×2 output block. Elements of LoRA tokens inside a
 * slice's columns get `(addInputs ? y : 0) + B_s[slot, o] · x[s, t]`; every other element is y,
 * read and written back unchanged. A block whose two columns fall in one slice at an even row of
 * B reads both from one texel; a block astride a slice border or at an odd row (odd widths or
 * offsets) computes each column on its own from the half of B's texel that holds its row.
 */
export class ExpandProgram implements GPGPUProgram {
  /**
   * The input textures in the order the kernel passes them: `Y` (`[T, W]`), `Xs` (the shrink output,
   * `[S, T, R]`), one `B<s>` per slice (`[L, O_s, R]`), then `Idx` (the padded token→slot index)
   * unless the batch has a single adapter. tfjs generates a `get<Name>(…)` sampler for each.
   */
  readonly variableNames: string[];
  /** `[T, W]`, y's shape: the program writes every element, y's value where no LoRA term lands. */
  readonly outputShape: number[];
  /**
   * The GLSL `main()` that tfjs wraps with its samplers, uniforms and `setOutput`. It opens with the
   * `// lora-kernels program` marker, by which the backend's `stats()` counts compiled programs.
   */
  readonly userCode: string;
  /**
   * tfjs-backend-webgl's shape-uniform mode: shapes travel as uniforms instead of constants in the
   * source, so the compiled program varies only with the slice count, the variant (one adapter or
   * an index) and the few shape flags tfjs still bakes in, not with the sizes.
   */
  readonly enableShapeUniforms = true;
  readonly packedInputs = true;
  readonly packedOutput = true;
  /**
   * `offsetStart`, `addInputs` (0 or 1), one `width<s>` per slice (its column count O_s), for
   * single-adapter batches `slot`, then the true ranks (`slotRank`, or `ranks[L]`), which bound the
   * reduction; values come from the kernel in this order.
   */
  readonly customUniforms: Uniform[];

  /**
   * @param outputShape - `[T, W]`, the shape of y.
   * @param numSlices - S: how many B stacks, whose column ranges follow each other from `offsetStart`.
   * @param single - True when every token uses one adapter: the slot is the `slot` uniform and no
   *   index texture is bound; false reads each token's slot from `Idx`.
   * @param slots - L, the slots per stack: the length of the `ranks` uniform (unused when `single`).
   */
  constructor(outputShape: number[], numSlices: number, single: boolean, slots: number) {
    this.outputShape = outputShape;
    const slices = Array.from({ length: numSlices }, (_, s) => `B${s}`);
    this.variableNames = ['Y', 'Xs', ...slices, ...(single ? [] : ['Idx'])];
    this.customUniforms = [
      { name: 'offsetStart', type: 'int' },
      { name: 'addInputs', type: 'int' },
      ...slices.map((_, s) => ({ name: `width${s}`, type: 'int' as const })),
      ...(single ? [{ name: 'slot', type: 'int' as const }] : []),
      ...rankUniforms(single, slots),
    ];
    const perSlice = slices
      .map(
        (b, s) => `{
          int end = start + width${s};
          if (col >= start && col + 1 < end && ((col - start) & 1) == 0) {
            int o = col - start;
            vec4 sum = vec4(0.0);
            ${pairLoop('rankPairs', `getXs(${s}, t, 2 * i)`, (slot) => `get${b}(${slot}, o, 2 * i)`, true)}
            delta = sum;
            inSlice = bvec2(true);
          } else {
            for (int j = 0; j < 2; j++) {
              int o = col + j - start;
              if (o >= 0 && o < width${s}) {
                bool odd = (o & 1) == 1;
                vec2 d = vec2(0.0);
                for (int i = 0; i < rankPairs; i++) {
                  vec4 x = keepRanks(getXs(${s}, t, 2 * i), i, kA, kB);
                  vec4 p = keepRanks(get${b}(a0, o, 2 * i), i, kA, kA);
                  vec4 q = keepRanks(get${b}(a1, o, 2 * i), i, kB, kB);
                  d += vec2(dot(x.xy, odd ? p.zw : p.xy), dot(x.zw, odd ? q.zw : q.xy));
                }
                if (j == 0) { delta.xz = d; inSlice.x = true; } else { delta.yw = d; inSlice.y = true; }
              }
            }
          }
          start = end;
        }`,
      )
      .join('\n          ');
    this.userCode = `
      ${PROGRAM_MARKER}: expand
      ${KEEP_RANKS}
      void main() {
        ivec2 c = getOutputCoords();
        int t = c.x;
        int col = c.y;
        vec4 y = getY(t, col);
        ${slotsOf(single)}
        vec4 result = y;
        if (slot0 >= 0 || slot1 >= 0) {
          int a0 = slot0 >= 0 ? slot0 : slot1;
          int a1 = slot1 >= 0 ? slot1 : a0;
          // The reduction stops at the larger of the two slots' true ranks; pairs past the smaller
          // one are masked (keepRanks).
          int kA = ${rankOf(single, 'a0')};
          int kB = ${rankOf(single, 'a1')};
          int kMin = min(kA, kB);
          int rankPairs = (max(kA, kB) + 1) / 2;
          vec4 delta = vec4(0.0);
          bvec2 inSlice = bvec2(false);
          int start = offsetStart;
          ${perSlice}
          // Components: x (t, col), y (t, col + 1), z (t + 1, col), w (t + 1, col + 1).
          vec4 base = addInputs == 1 ? y : vec4(0.0);
          if (inSlice.x && slot0 >= 0) result.x = base.x + delta.x;
          if (inSlice.y && slot0 >= 0) result.y = base.y + delta.y;
          if (inSlice.x && slot1 >= 0) result.z = base.z + delta.z;
          if (inSlice.y && slot1 >= 0) result.w = base.w + delta.w;
        }
        setOutput(result);
      }
    `;
  }
}
