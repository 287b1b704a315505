import type { WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';

/**
 * WGSL programs for tfjs-backend-webgpu. Sizes travel as uniforms, so the generated code depends
 * only on the constants baked into `shaderKey` (vec4 loads or not, one adapter or a per-token
 * index): a whole serving run compiles at most a handful of pipelines, however T, H, O and R vary.
 * Every program reads all of its inputs (WebGPU's auto layout drops unused bindings).
 */

/** Rank rows per shrink workgroup × split-K lanes per row = 64 invocations. */
const RANK_TILE = 8;
const K_SPLIT = 8;
const FLAT_WORKGROUP = 64;

export const SHADER_PREFIX = 'lora_';

/**
 * Counts along x, y and z: a tfjs `WebGPUProgram`'s `dispatch` (workgroups in the grid) or its
 * `workgroupSize` (invocations per workgroup).
 */
export type Dispatch = [number, number, number];

const slotExpr = (single: boolean, t: string) => (single ? 'uniforms.slot' : `Meta[${t}]`);

/**
 * The true rank of `slot` (issue #17: a slot is read only up to it, so a rank-8 adapter in a
 * `maxLoraRank` 32 runtime costs rank 8 and its zero padding is never read): the `slotRank` uniform
 * for single-adapter batches, else the slot's lane of the `ranks` uniform array (4 slots per vec4;
 * 0 for slot -1). A uniform, not a constant, so ranks never multiply the programs compiled.
 */
const rankExpr = (single: boolean, slot: string) =>
  single ? 'uniforms.slotRank' : `select(0, uniforms.ranks[max(${slot}, 0) / 4][max(${slot}, 0) % 4], ${slot} >= 0)`;

/**
 * The uniform field `rankExpr` reads: `slotRank` (one i32), or `ranks`, the slots' ranks as
 * `⌈L / 4⌉` vec4s (the kernel passes one int32 ×4 uniform entry per vec4: tfjs aligns each to 16
 * bytes, as WGSL lays out `array<vec4<i32>, N>`).
 */
const rankUniform = (single: boolean, rankVecs: number) => (single ? ' slotRank : i32,' : ` ranks : array<vec4<i32>, ${rankVecs}>,`);

/** The shader-key suffix of the rank uniform: its array length is part of the generated code. */
const rankKey = (single: boolean, rankVecs: number) => (single ? '' : `_r${rankVecs}`);

/**
 * Shrink, BGMV-style: one workgroup per (token, tile of 8 rank rows); 8 lanes split H (split-K)
 * and reduce through workgroup memory. `out[s, t, r] = scale · A[slot(t), r] · x[t]`, zero for -1.
 */
export class ShrinkProgram implements WebGPUProgram {
  /**
   * The storage buffers in the order the kernel passes them: `X` (`[T, H]`), `A` (one slice's
   * `[L, R, H]` stack), then `Meta` (the batch layout) unless the batch has a single adapter.
   */
  readonly variableNames: string[];
  /** Floats per array element of each buffer: 4 (`vec4<f32>`) for X and A when H % 4 = 0, else 1; Meta is always 1. */
  readonly variableComponents: number[];
  /** `[S, T, R]`. The kernel passes the same output to every slice's run; each writes plane `uniforms.slice`. */
  readonly outputShape: number[];
  /**
   * The WGSL variant, prefixed `lora_` so that the backend's `stats()` can count its
   * pipelines. tfjs `runWebGPUProgram` replaces it with the full pipeline-cache key (this plus the
   * workgroup size, input ranks, dtypes and names).
   */
  readonly shaderKey: string;
  /**
   * Which output dimensions tfjs maps to which grid axis for its `getOutputCoords()`, which this
   * shader does not call: it places itself by `workgroupId` and `localId`. What the layout decides is
   * that it is not flat (y and z are set), so tfjs calls `main()` without an index, and throws
   * rather than reshapes a grid over the device's `maxComputeWorkgroupsPerDimension` (≥ 65535).
   */
  readonly dispatchLayout = {
    /** Output dimension 0 (unused by the shader). */
    x: [0],
    /** Output dimension 1 (unused by the shader); set so that the layout is not flat. */
    y: [1],
    /** Output dimension 2 (unused by the shader); set so that the layout is not flat. */
    z: [2],
  };
  /** `[⌈R / 8⌉, T, 1]` workgroups: one per (tile of 8 rank rows, token). T must fit the per-dimension limit. */
  readonly dispatch: Dispatch;
  /** 64 invocations: 8 rank rows × 8 lanes that split the H loop and sum through workgroup memory. */
  readonly workgroupSize: Dispatch = [RANK_TILE * K_SPLIT, 1, 1];
  /**
   * Fields appended to tfjs' `Uniforms` struct, passed by the kernel in this order: T, H, R, the
   * slice this run writes, the adapter's slot (single-adapter batches; -1 otherwise, unused), `scale`,
   * and the true ranks (`rankExpr` in this file).
   */
  readonly uniforms: string;
  readonly #vec4: boolean;
  readonly #single: boolean;

  /**
   * @param outputShape - `[S, T, R]`, the shape of the shrink output.
   * @param numTokens - T, the batch's token count.
   * @param rank - R, the LoRA rank.
   * @param vec4 - Load X and A as `vec4<f32>`; only valid when H is a multiple of 4.
   * @param single - Every token uses one adapter: its slot is a uniform and `Meta` is not bound.
   * @param rankVecs - ⌈L / 4⌉: the vec4s of slot ranks an indexed batch's program reads (unused when `single`).
   */
  constructor(outputShape: number[], numTokens: number, rank: number, vec4: boolean, single: boolean, rankVecs: number) {
    this.outputShape = outputShape;
    this.#vec4 = vec4;
    this.#single = single;
    this.variableNames = single ? ['X', 'A'] : ['X', 'A', 'Meta'];
    this.variableComponents = vec4 ? [4, 4, 1].slice(0, this.variableNames.length) : this.variableNames.map(() => 1);
    this.uniforms = `numTokens : i32, hidden : i32, rank : i32, slice : i32, slot : i32, scale : f32,${rankUniform(single, rankVecs)}`;
    this.shaderKey = `${SHADER_PREFIX}shrink_${vec4 ? 'vec4' : 'scalar'}_${single ? 'single' : 'indexed'}${rankKey(single, rankVecs)}`;
    this.dispatch = [Math.ceil(rank / RANK_TILE), numTokens, 1];
  }

  /**
   * The program's own WGSL: `main`, plus its workgroup arrays where it has some. tfjs prepends the
   * bindings, the `Uniforms` struct and its helpers, and appends the `_start` entry point.
   */
  getUserCode(): string {
    const v = this.#vec4;
    return `
      var<workgroup> partial : array<f32, ${RANK_TILE * K_SPLIT}>;
      fn main() {
        let lane = i32(localId.x) % ${K_SPLIT};
        let r = i32(workgroupId.x) * ${RANK_TILE} + i32(localId.x) / ${K_SPLIT};
        let t = i32(workgroupId.y);
        let live = r < uniforms.rank && t < uniforms.numTokens;
        var sum = 0.0;
        if (live) {
          let slot = ${slotExpr(this.#single, 't')};
          // Rows past the slot's true rank are padding: never read, their result is 0.
          if (slot >= 0 && r < ${rankExpr(this.#single, 'slot')}) {
            ${
              v
                ? `let h4 = uniforms.hidden / 4;
            let aBase = (slot * uniforms.rank + r) * h4;
            let xBase = t * h4;
            for (var h = lane; h < h4; h = h + ${K_SPLIT}) { sum = sum + dot(X[xBase + h], A[aBase + h]); }`
                : `let aBase = (slot * uniforms.rank + r) * uniforms.hidden;
            let xBase = t * uniforms.hidden;
            for (var h = lane; h < uniforms.hidden; h = h + ${K_SPLIT}) { sum = sum + X[xBase + h] * A[aBase + h]; }`
            }
          }
        }
        partial[localId.x] = sum;
        workgroupBarrier();
        if (live && lane == 0) {
          var total = 0.0;
          for (var i = 0u; i < ${K_SPLIT}u; i = i + 1u) { total = total + partial[localId.x + i]; }
          result[(uniforms.slice * uniforms.numTokens + t) * uniforms.rank + r] = uniforms.scale * total;
        }
      }
    `;
  }
}

/**
 * Expand: one invocation per (token, output column) of a slice; the token's slot selects the B
 * row, the rank loop is vec4 when R allows. Tokens without an adapter are left alone (the copy
 * program already wrote y there).
 */
export class ExpandProgram implements WebGPUProgram {
  /**
   * The storage buffers in the order the kernel passes them: `Y` (`[T, W]`), `Xs` (the shrink
   * output, `[S, T, R]`), `B` (one slice's `[L, O, R]` stack), then `Meta` (the batch layout) unless
   * the batch has a single adapter.
   */
  readonly variableNames: string[];
  /** Floats per array element of each buffer: 4 (`vec4<f32>`) for Xs and B when R % 4 = 0, else 1; Y and Meta are always 1. */
  readonly variableComponents: number[];
  /** `[T, W]`, y's shape. The kernel passes the copy of y as the output, and each slice's run writes its columns into it. */
  readonly outputShape: number[];
  /**
   * The WGSL variant, prefixed `lora_` so that the backend's `stats()` can count its
   * pipelines. tfjs `runWebGPUProgram` replaces it with the full pipeline-cache key (this plus the
   * workgroup size, input ranks, dtypes and names).
   */
  readonly shaderKey: string;
  /**
   * Flat: tfjs calls `main(index)` with the global invocation index, which the shader splits into
   * (token, column of the slice); it stays linear when tfjs reshapes a grid over the device's
   * `maxComputeWorkgroupsPerDimension` into 2-D or 3-D.
   */
  readonly dispatchLayout = {
    /** Both output dimensions on the grid's x axis. */
    x: [0, 1],
  };
  /** `[⌈T · O / 64⌉, 1, 1]` workgroups: one invocation per (token, column of the slice); the overhang returns at once. */
  readonly dispatch: Dispatch;
  /** 64 invocations, one output element each. */
  readonly workgroupSize: Dispatch = [FLAT_WORKGROUP, 1, 1];
  /**
   * Fields appended to tfjs' `Uniforms` struct, passed by the kernel in this order: T, W, the slice's
   * column count O, its first column (`offsetStart + Σ_{j<s} O_j`), R, the slice (plane of Xs), the
   * adapter's slot (single-adapter batches; -1 otherwise, unused), `addInputs` (1: add y, 0: write the
   * term alone), and the true ranks (`rankExpr` in this file).
   */
  readonly uniforms: string;
  readonly #vec4: boolean;
  readonly #single: boolean;

  /**
   * @param outputShape - `[T, W]`, the shape of y.
   * @param numTokens - T, the batch's token count.
   * @param outSlice - O, the column count of the slice this program writes.
   * @param vec4 - Load Xs and B as `vec4<f32>`; only valid when R is a multiple of 4.
   * @param single - Every token uses one adapter: its slot is a uniform and `Meta` is not bound.
   * @param rankVecs - ⌈L / 4⌉: the vec4s of slot ranks an indexed batch's program reads (unused when `single`).
   */
  constructor(outputShape: number[], numTokens: number, outSlice: number, vec4: boolean, single: boolean, rankVecs: number) {
    this.outputShape = outputShape;
    this.#vec4 = vec4;
    this.#single = single;
    this.variableNames = single ? ['Y', 'Xs', 'B'] : ['Y', 'Xs', 'B', 'Meta'];
    this.variableComponents = (vec4 ? [1, 4, 4, 1] : [1, 1, 1, 1]).slice(0, this.variableNames.length);
    this.uniforms = `numTokens : i32, width : i32, outSlice : i32, col0 : i32, rank : i32, slice : i32, slot : i32, addInputs : i32,${rankUniform(single, rankVecs)}`;
    this.shaderKey = `${SHADER_PREFIX}expand_${vec4 ? 'vec4' : 'scalar'}_${single ? 'single' : 'indexed'}${rankKey(single, rankVecs)}`;
    this.dispatch = [Math.ceil((numTokens * outSlice) / FLAT_WORKGROUP), 1, 1];
  }

  /**
   * The program's own WGSL: `main`, plus its workgroup arrays where it has some. tfjs prepends the
   * bindings, the `Uniforms` struct and its helpers, and appends the `_start` entry point.
   */
  getUserCode(): string {
    const v = this.#vec4;
    return `
      fn main(index : i32) {
        if (index >= uniforms.numTokens * uniforms.outSlice) { return; }
        let t = index / uniforms.outSlice;
        let o = index % uniforms.outSlice;
        let slot = ${slotExpr(this.#single, 't')};
        if (slot < 0) { return; }
        // Columns of B (and of Xs) past the slot's true rank are padding and never read.
        let K = ${rankExpr(this.#single, 'slot')};
        var sum = 0.0;
        ${
          v
            ? `let r4 = uniforms.rank / 4;
        let bBase = (slot * uniforms.outSlice + o) * r4;
        let xBase = (uniforms.slice * uniforms.numTokens + t) * r4;
        let full = K / 4;
        for (var r = 0; r < full; r = r + 1) { sum = sum + dot(B[bBase + r], Xs[xBase + r]); }
        if (full * 4 < K) {
          // The last 1–3 ranks: lanes past K selected away, not multiplied by 0 (0 · NaN is NaN).
          let m = vec4<i32>(0, 1, 2, 3) < vec4<i32>(K - full * 4);
          sum = sum + dot(select(vec4<f32>(0.0), B[bBase + full], m), select(vec4<f32>(0.0), Xs[xBase + full], m));
        }`
            : `let bBase = (slot * uniforms.outSlice + o) * uniforms.rank;
        let xBase = (uniforms.slice * uniforms.numTokens + t) * uniforms.rank;
        for (var r = 0; r < K; r = r + 1) { sum = sum + B[bBase + r] * Xs[xBase + r]; }`
        }
        let at = t * uniforms.width + uniforms.col0 + o;
        if (uniforms.addInputs == 1) { sum = sum + Y[at]; }
        result[at] = sum;
      }
    `;
  }
}

/** out = y: what no LoRA term overwrites keeps its value bit for bit. */
export class CopyProgram implements WebGPUProgram {
  /** The one storage buffer: `Y`, the tensor copied. */
  readonly variableNames = ['Y'];
  /** y's shape; the kernel passes no output, so tfjs allocates the copy with this shape. */
  readonly outputShape: number[];
  /**
   * The WGSL variant, prefixed `lora_` so that the backend's `stats()` can count its
   * pipelines. tfjs `runWebGPUProgram` replaces it with the full pipeline-cache key (this plus the
   * workgroup size, input ranks, dtypes and names).
   */
  readonly shaderKey = `${SHADER_PREFIX}copy`;
  /**
   * Flat: tfjs calls `main(index)` with the global invocation index, the element copied; it stays
   * linear when tfjs reshapes a grid over the device's `maxComputeWorkgroupsPerDimension` into 2-D or 3-D.
   */
  readonly dispatchLayout = {
    /** Both output dimensions on the grid's x axis. */
    x: [0, 1],
  };
  /** `[⌈size / 64⌉, 1, 1]` workgroups, size being the element count of `outputShape`. */
  readonly dispatch: Dispatch;
  /** 64 invocations, one element each. */
  readonly workgroupSize: Dispatch = [FLAT_WORKGROUP, 1, 1];
  /** Makes tfjs add a `size` uniform (the output's element count) that stops the last workgroup's overhang. */
  readonly size = true;

  /** @param outputShape - The shape of the tensor copied (`[T, W]` for y). */
  constructor(outputShape: number[]) {
    this.outputShape = outputShape;
    this.dispatch = [Math.ceil(outputShape.reduce((a, b) => a * b, 1) / FLAT_WORKGROUP), 1, 1];
  }

  /**
   * The program's own WGSL: `main`, plus its workgroup arrays where it has some. tfjs prepends the
   * bindings, the `Uniforms` struct and its helpers, and appends the `_start` entry point.
   */
  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) { result[index] = Y[index]; }
      }
    `;
  }
}

const TT = 8; // = TOKEN_TILE
const KC = 128; // H chunk staged in workgroup memory
const RC = 64; // rank chunk staged in workgroup memory

/**
 * Shrink, SGMV: one workgroup per (tile of 8 tokens of one slot, 8 rank rows). x and A chunks of
 * 128 features are staged in workgroup memory, so each A row is read once per tile instead of once
 * per token. Tiles of slot -1 write the zeros of tokens without LoRA.
 */
export class SegmentShrinkProgram implements WebGPUProgram {
  /**
   * The storage buffers in the order the kernel passes them: `X` (`[T, H]`), `A` (one slice's
   * `[L, R, H]` stack) and `Meta` (the batch layout, whose tiles and grouped tokens it reads).
   */
  readonly variableNames = ['X', 'A', 'Meta'];
  /** `[S, T, R]`. The kernel passes the same output to every slice's run; each writes plane `uniforms.slice`. */
  readonly outputShape: number[];
  /**
   * The WGSL variant, prefixed `lora_` so that the backend's `stats()` can count its
   * pipelines. tfjs `runWebGPUProgram` replaces it with the full pipeline-cache key (this plus the
   * workgroup size, input ranks, dtypes and names).
   */
  readonly shaderKey: string;
  /**
   * Which output dimensions tfjs maps to which grid axis for its `getOutputCoords()`, which this
   * shader does not call: it places itself by `workgroupId` and `localId`. What the layout decides is
   * that it is not flat (y and z are set), so tfjs calls `main()` without an index, and throws
   * rather than reshapes a grid over the device's `maxComputeWorkgroupsPerDimension` (≥ 65535).
   */
  readonly dispatchLayout = {
    /** Output dimension 0 (unused by the shader). */
    x: [0],
    /** Output dimension 1 (unused by the shader); set so that the layout is not flat. */
    y: [1],
    /** Output dimension 2 (unused by the shader); set so that the layout is not flat. */
    z: [2],
  };
  /** `[⌈R / 8⌉, numTiles, 1]` workgroups: one per (8 rank rows, tile). */
  readonly dispatch: Dispatch;
  /** 64 invocations: 8 tokens × 8 rank rows, one output each. */
  readonly workgroupSize: Dispatch = [TT * RANK_TILE, 1, 1];
  /**
   * Fields appended to tfjs' `Uniforms` struct, passed by the kernel in this order: T, H, R, the
   * slice this run writes, the layout's `sortedOffset` and `tilesOffset`, `scale`, and the slots' true
   * ranks (`rankExpr` in this file).
   */
  readonly uniforms: string;

  /**
   * @param outputShape - `[S, T, R]`, the shape of the shrink output.
   * @param numTiles - The layout's tile count (`BatchLayout.numTiles`), slot -1 tiles included.
   * @param rank - R, the LoRA rank.
   * @param rankVecs - ⌈L / 4⌉: the vec4s of slot ranks the program reads.
   */
  constructor(outputShape: number[], numTiles: number, rank: number, rankVecs: number) {
    this.outputShape = outputShape;
    this.dispatch = [Math.ceil(rank / RANK_TILE), numTiles, 1];
    this.uniforms = `numTokens : i32, hidden : i32, rank : i32, slice : i32, sortedOffset : i32, tilesOffset : i32, scale : f32,${rankUniform(false, rankVecs)}`;
    this.shaderKey = `${SHADER_PREFIX}shrink_segments${rankKey(false, rankVecs)}`;
  }

  /**
   * The program's own WGSL: `main`, plus its workgroup arrays where it has some. tfjs prepends the
   * bindings, the `Uniforms` struct and its helpers, and appends the `_start` entry point.
   */
  getUserCode(): string {
    return `
      var<workgroup> xs : array<f32, ${TT * KC}>;
      var<workgroup> ws : array<f32, ${RANK_TILE * KC}>;
      fn main() {
        let li = i32(localId.x);
        let tt = li / ${RANK_TILE};
        let rr = li % ${RANK_TILE};
        let tb = uniforms.tilesOffset + 3 * i32(workgroupId.y);
        let slot = Meta[tb];
        let start = Meta[tb + 1];
        let count = Meta[tb + 2];
        let r0 = i32(workgroupId.x) * ${RANK_TILE};
        let H = uniforms.hidden;
        let R = uniforms.rank;
        // Rows past the slot's true rank are padding: never read (staged as 0, so their result is 0).
        let K = ${rankExpr(false, 'slot')};
        var acc = 0.0;
        for (var h0 = 0; h0 < H; h0 = h0 + ${KC}) {
          for (var k = 0; k < ${(TT * KC) / (TT * RANK_TILE)}; k = k + 1) {
            let e = li * ${(TT * KC) / (TT * RANK_TILE)} + k;
            let row = e / ${KC};
            let h = h0 + e % ${KC};
            var xv = 0.0;
            if (row < count && h < H) { xv = X[Meta[uniforms.sortedOffset + start + row] * H + h]; }
            xs[e] = xv;
            var wv = 0.0;
            if (r0 + row < K && h < H) { wv = A[(slot * R + r0 + row) * H + h]; }
            ws[e] = wv;
          }
          workgroupBarrier();
          for (var c = 0; c < ${KC}; c = c + 1) { acc = acc + xs[tt * ${KC} + c] * ws[rr * ${KC} + c]; }
          workgroupBarrier();
        }
        if (tt < count && r0 + rr < R) {
          let token = Meta[uniforms.sortedOffset + start + tt];
          result[(uniforms.slice * uniforms.numTokens + token) * R + r0 + rr] = uniforms.scale * acc;
        }
      }
    `;
  }
}

/**
 * Expand, SGMV: one workgroup per (tile of 8 tokens of one slot, 64 output columns). The tile's
 * shrink values are staged in workgroup memory (64 ranks at a time); each invocation reads its B
 * row once and applies it to all 8 tokens.
 */
export class SegmentExpandProgram implements WebGPUProgram {
  /**
   * The storage buffers in the order the kernel passes them: `Y` (`[T, W]`), `Xs` (the shrink
   * output, `[S, T, R]`), `B` (one slice's `[L, O, R]` stack) and `Meta` (the batch layout).
   */
  readonly variableNames = ['Y', 'Xs', 'B', 'Meta'];
  /** `[T, W]`, y's shape. The kernel passes the copy of y as the output, and each slice's run writes its columns into it. */
  readonly outputShape: number[];
  /**
   * The WGSL variant, prefixed `lora_` so that the backend's `stats()` can count its
   * pipelines. tfjs `runWebGPUProgram` replaces it with the full pipeline-cache key (this plus the
   * workgroup size, input ranks, dtypes and names).
   */
  readonly shaderKey: string;
  /**
   * Not flat (y and z are set), so tfjs calls `main()` without an index: the shader places itself by
   * `workgroupId` and `localId`. tfjs throws rather than reshapes a grid over the device's
   * `maxComputeWorkgroupsPerDimension` (≥ 65535). Three axes for a 2-D output: tfjs generates no
   * `getOutputCoords()`, which the shader does not use anyway.
   */
  readonly dispatchLayout = {
    /** Output dimension 0 (nominal: the shader does not read output coordinates). */
    x: [0],
    /** Output dimension 1 (nominal); set so that the layout is not flat. */
    y: [1],
    /** No such output dimension; set so that the layout is not flat. */
    z: [2],
  };
  /** `[⌈O / 64⌉, numTiles, 1]` workgroups: one per (64 columns of the slice, tile). */
  readonly dispatch: Dispatch;
  /** 64 invocations, one output column each, for all 8 tokens of the tile. */
  readonly workgroupSize: Dispatch = [FLAT_WORKGROUP, 1, 1];
  /**
   * Fields appended to tfjs' `Uniforms` struct, passed by the kernel in this order: T, W, the slice's
   * column count O, its first column (`offsetStart + Σ_{j<s} O_j`), R, the slice (plane of Xs),
   * `addInputs` (1: add y, 0: write the term alone), the layout's `sortedOffset` and `tilesOffset`, and
   * the slots' true ranks (`rankExpr` in this file).
   */
  readonly uniforms: string;

  /**
   * @param outputShape - `[T, W]`, the shape of y.
   * @param numTiles - The layout's tile count (`BatchLayout.numTiles`); slot -1 tiles write nothing.
   * @param outSlice - O, the column count of the slice this program writes.
   * @param rankVecs - ⌈L / 4⌉: the vec4s of slot ranks the program reads.
   */
  constructor(outputShape: number[], numTiles: number, outSlice: number, rankVecs: number) {
    this.outputShape = outputShape;
    this.dispatch = [Math.ceil(outSlice / FLAT_WORKGROUP), numTiles, 1];
    this.uniforms = `numTokens : i32, width : i32, outSlice : i32, col0 : i32, rank : i32, slice : i32, addInputs : i32, sortedOffset : i32, tilesOffset : i32,${rankUniform(false, rankVecs)}`;
    this.shaderKey = `${SHADER_PREFIX}expand_segments${rankKey(false, rankVecs)}`;
  }

  /**
   * The program's own WGSL: `main`, plus its workgroup arrays where it has some. tfjs prepends the
   * bindings, the `Uniforms` struct and its helpers, and appends the `_start` entry point.
   */
  getUserCode(): string {
    return `
      var<workgroup> vs : array<f32, ${TT * RC}>;
      fn main() {
        let li = i32(localId.x);
        let tb = uniforms.tilesOffset + 3 * i32(workgroupId.y);
        let slot = Meta[tb];
        let start = Meta[tb + 1];
        let count = Meta[tb + 2];
        let o = i32(workgroupId.x) * ${FLAT_WORKGROUP} + li;
        let O = uniforms.outSlice;
        let R = uniforms.rank;
        // Ranks past the slot's true rank are padding: neither B nor Xs is read there.
        let K = ${rankExpr(false, 'slot')};
        // Eight named accumulators: an indexed private array is spilled to memory by some compilers.
        var a0 = 0.0; var a1 = 0.0; var a2 = 0.0; var a3 = 0.0; var a4 = 0.0; var a5 = 0.0; var a6 = 0.0; var a7 = 0.0;
        for (var r0 = 0; r0 < R; r0 = r0 + ${RC}) {
          for (var k = 0; k < ${(TT * RC) / FLAT_WORKGROUP}; k = k + 1) {
            let e = li * ${(TT * RC) / FLAT_WORKGROUP} + k;
            let tt = e / ${RC};
            let r = r0 + e % ${RC};
            var v = 0.0;
            if (tt < count && r < K) {
              v = Xs[(uniforms.slice * uniforms.numTokens + Meta[uniforms.sortedOffset + start + tt]) * R + r];
            }
            vs[e] = v;
          }
          workgroupBarrier();
          if (slot >= 0 && o < O) {
            let rEnd = min(${RC}, K - r0);
            let row = (slot * O + o) * R + r0;
            for (var rc = 0; rc < rEnd; rc = rc + 1) {
              let b = B[row + rc];
              a0 = a0 + b * vs[rc]; a1 = a1 + b * vs[${RC} + rc]; a2 = a2 + b * vs[${2 * RC} + rc]; a3 = a3 + b * vs[${3 * RC} + rc];
              a4 = a4 + b * vs[${4 * RC} + rc]; a5 = a5 + b * vs[${5 * RC} + rc]; a6 = a6 + b * vs[${6 * RC} + rc]; a7 = a7 + b * vs[${7 * RC} + rc];
            }
          }
          workgroupBarrier();
        }
        if (slot >= 0 && o < O) {
          let acc = array<f32, ${TT}>(a0, a1, a2, a3, a4, a5, a6, a7);
          for (var tt = 0; tt < ${TT}; tt = tt + 1) {
            if (tt < count) {
              let at = Meta[uniforms.sortedOffset + start + tt] * uniforms.width + uniforms.col0 + o;
              var v = acc[tt];
              if (uniforms.addInputs == 1) { v = v + Y[at]; }
              result[at] = v;
            }
          }
        }
      }
    `;
  }
}
