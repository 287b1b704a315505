import type { WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';

/**
 * WGSL programs for tfjs-backend-webgpu. Sizes travel as uniforms, so the generated code depends
 * only on the constants baked into `shaderKey` (vec4 loads or not, one adapter or a per-token
 * index): a whole serving run compiles at most a handful of pipelines, however T, H, O and R vary.
 * Every program reads all of its inputs (WebGPU's auto layout drops unused bindings).
 */

/** Rank rows per shrink workgroup × split-K lanes per row = 64 invocations. */
export const RANK_TILE = 8;
export const K_SPLIT = 8;
const FLAT_WORKGROUP = 64;

export const SHADER_PREFIX = 'lora_';

type Dispatch = [number, number, number];

const slotExpr = (single: boolean, t: string) => (single ? 'uniforms.slot' : `Idx[${t}]`);

/**
 * Shrink, BGMV-style: one workgroup per (token, tile of 8 rank rows); 8 lanes split H (split-K)
 * and reduce through workgroup memory. `out[s, t, r] = scale · A[slot(t), r] · x[t]`, zero for -1.
 */
export class ShrinkProgram implements WebGPUProgram {
  readonly variableNames: string[];
  readonly variableComponents: number[];
  readonly outputShape: number[];
  readonly shaderKey: string;
  readonly dispatchLayout = { x: [0], y: [1], z: [2] };
  readonly dispatch: Dispatch;
  readonly workgroupSize: Dispatch = [RANK_TILE * K_SPLIT, 1, 1];
  readonly uniforms = 'numTokens : i32, hidden : i32, rank : i32, slice : i32, slot : i32, scale : f32,';
  readonly #vec4: boolean;
  readonly #single: boolean;

  constructor(outputShape: number[], numTokens: number, rank: number, vec4: boolean, single: boolean) {
    this.outputShape = outputShape;
    this.#vec4 = vec4;
    this.#single = single;
    this.variableNames = single ? ['X', 'A'] : ['X', 'A', 'Idx'];
    this.variableComponents = vec4 ? [4, 4, 1].slice(0, this.variableNames.length) : this.variableNames.map(() => 1);
    this.shaderKey = `${SHADER_PREFIX}shrink_${vec4 ? 'vec4' : 'scalar'}_${single ? 'single' : 'indexed'}`;
    this.dispatch = [Math.ceil(rank / RANK_TILE), numTokens, 1];
  }

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
          if (slot >= 0) {
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
  readonly variableNames: string[];
  readonly variableComponents: number[];
  readonly outputShape: number[];
  readonly shaderKey: string;
  readonly dispatchLayout = { x: [0, 1] };
  readonly dispatch: Dispatch;
  readonly workgroupSize: Dispatch = [FLAT_WORKGROUP, 1, 1];
  readonly uniforms = 'numTokens : i32, width : i32, outSlice : i32, col0 : i32, rank : i32, slice : i32, slot : i32, addInputs : i32,';
  readonly #vec4: boolean;
  readonly #single: boolean;

  constructor(outputShape: number[], numTokens: number, outSlice: number, vec4: boolean, single: boolean) {
    this.outputShape = outputShape;
    this.#vec4 = vec4;
    this.#single = single;
    this.variableNames = single ? ['Y', 'Xs', 'B'] : ['Y', 'Xs', 'B', 'Idx'];
    this.variableComponents = (vec4 ? [1, 4, 4, 1] : [1, 1, 1, 1]).slice(0, this.variableNames.length);
    this.shaderKey = `${SHADER_PREFIX}expand_${vec4 ? 'vec4' : 'scalar'}_${single ? 'single' : 'indexed'}`;
    this.dispatch = [Math.ceil((numTokens * outSlice) / FLAT_WORKGROUP), 1, 1];
  }

  getUserCode(): string {
    const v = this.#vec4;
    return `
      fn main(index : i32) {
        if (index >= uniforms.numTokens * uniforms.outSlice) { return; }
        let t = index / uniforms.outSlice;
        let o = index % uniforms.outSlice;
        let slot = ${slotExpr(this.#single, 't')};
        if (slot < 0) { return; }
        var sum = 0.0;
        ${
          v
            ? `let r4 = uniforms.rank / 4;
        let bBase = (slot * uniforms.outSlice + o) * r4;
        let xBase = (uniforms.slice * uniforms.numTokens + t) * r4;
        for (var r = 0; r < r4; r = r + 1) { sum = sum + dot(B[bBase + r], Xs[xBase + r]); }`
            : `let bBase = (slot * uniforms.outSlice + o) * uniforms.rank;
        let xBase = (uniforms.slice * uniforms.numTokens + t) * uniforms.rank;
        for (var r = 0; r < uniforms.rank; r = r + 1) { sum = sum + B[bBase + r] * Xs[xBase + r]; }`
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
  readonly variableNames = ['Y'];
  readonly outputShape: number[];
  readonly shaderKey = `${SHADER_PREFIX}copy`;
  readonly dispatchLayout = { x: [0, 1] };
  readonly dispatch: Dispatch;
  readonly workgroupSize: Dispatch = [FLAT_WORKGROUP, 1, 1];
  readonly size = true;

  constructor(outputShape: number[]) {
    this.outputShape = outputShape;
    this.dispatch = [Math.ceil(outputShape.reduce((a, b) => a * b, 1) / FLAT_WORKGROUP), 1, 1];
  }

  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) { result[index] = Y[index]; }
      }
    `;
  }
}
