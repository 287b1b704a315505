import { LoRAError } from '@lora/core';
import { DTYPE_BYTES, type DType, type HbmArray } from './arrays.js';

/**
 * A small Pallas (TPU) interpreter. A kernel is a body run once per point of a grid of program
 * ids; BlockSpecs map grid indices (and scalar-prefetched int arrays) to the block of each HBM
 * array the step sees; VMEM scratch persists across steps; `when` guards regions. As in Pallas'
 * TPU pipeline an input block is DMA'd only when its block index differs from the previous step's,
 * and an output block is written back when its index changes or the grid ends: the HBM bytes of a
 * call fall out of running it. Programs are compiled (cached) per static signature, like jax.jit.
 * The grid runs in row-major order (last axis fastest). Dimension semantics are validated
 * (reduction axes, 'arbitrary', must be innermost so an output block stays resident while it
 * accumulates); 'parallel' does not split the grid: v5e and v6e have one TensorCore per chip.
 */

/**
 * Semantics of one grid axis, as in the JAX Pallas TPU `dimension_semantics` compiler parameter:
 * 'parallel' axes have independent steps; 'arbitrary' marks a reduction axis, which must come after
 * every parallel one. The interpreter validates the order but runs every axis sequentially.
 */
export type Dimension = 'parallel' | 'arbitrary';

/**
 * How one operand is cut into blocks, like JAX Pallas `BlockSpec`: a block shape plus an index map
 * from the grid position to the block a step sees. The block must tile the operand's padded shape
 * exactly (checked when the program is compiled).
 */
export interface BlockSpec {
  /** Block shape, one entry per array dimension. */
  readonly block: readonly number[];
  /** Pallas' index_map: grid indices (and prefetched scalars) → block indices. */
  readonly index: (grid: readonly number[], prefetch: readonly Int32Array[]) => readonly number[];
}

/** One HBM operand of a kernel as compiled; its shape, dtype and block are part of the compile signature. */
export interface OperandSpec {
  /** Full padded shape in elements; every dimension must be a multiple of the block's. Call arrays must match it. */
  readonly shape: readonly number[];
  /** Element type: sets the bytes charged per block DMA and must match the call's array. */
  readonly dtype: DType;
  /** The blocks each grid step sees. */
  readonly spec: BlockSpec;
}

/** The view of one array a step sees: element offset of the block in each dimension. */
export interface Block {
  /** The whole HBM array; a kernel body reads or writes its `data` at `origin` (row-major, padded shape). */
  array: HbmArray;
  /** Element offset of the block in each dimension (block index × block shape), moved by the interpreter before every step. */
  readonly origin: number[];
  /** Block shape in elements: the operand's `BlockSpec.block`. */
  readonly shape: readonly number[];
}

/**
 * What a kernel body sees at one grid step, mirroring the Pallas TPU kernel API (`pl.program_id`,
 * `pl.num_programs`, scalar-prefetch refs, block refs, VMEM scratch, `pl.when`) plus the hook that
 * charges MXU work to the cost model.
 */
export interface StepContext {
  /** `pl.program_id(axis)`: this step's index along grid axis `axis`. */
  programId(axis: number): number;
  /** `pl.num_programs(axis)`: the grid's size along `axis`. */
  numPrograms(axis: number): number;
  /** The call's scalar-prefetched int32 arrays (e.g. the slot of every padded token), as the index maps also see them. */
  readonly prefetch: readonly Int32Array[];
  /** One view per input operand, placed at this step's block (unchanged on a skipped step). */
  readonly inputs: readonly Block[];
  /** One view per output operand, placed at this step's block; the body writes its results there. */
  readonly outputs: readonly Block[];
  /** VMEM scratch buffers, persistent across steps of one call. */
  readonly scratch: readonly Float32Array[];
  /** pl.when: runs `fn` when `cond` holds. */
  when(cond: boolean, fn: () => void): void;
  /** Charges one MXU matmul of `[m, k] · [k, n]` (padded to the MXU tile) to this step. */
  chargeMatmul(m: number, k: number, n: number): void;
}

/**
 * A Pallas kernel as the interpreter compiles it: grid, dimension semantics, operands with their
 * block specs, VMEM scratch, statics and the body run at every grid step. Everything except the
 * functions (`body`, `skipStep`, index maps) forms the compile signature, so whatever the functions
 * depend on must be in the shapes or `statics`.
 */
export interface KernelDef {
  /** Kernel name ('bgmv', 'shrink', 'expand', 'einsum-shrink', 'einsum-expand'): the signature's first field and the op name in cost records. */
  readonly name: string;
  /** Programs along each grid axis (positive integers); steps run row-major, last axis fastest. */
  readonly grid: readonly number[];
  /** Semantics of each grid axis, one per `grid` entry; reduction ('arbitrary') axes must be innermost. */
  readonly dimensions: readonly Dimension[];
  /** Scalar-prefetch int32 arrays every call passes (copied to SMEM once: 4 bytes per element charged). */
  readonly numPrefetch: number;
  /** Input operands, in the order `Program.run` receives their arrays. */
  readonly inputs: readonly OperandSpec[];
  /** Output operands; a block is written back to HBM when its index changes and when the grid ends. */
  readonly outputs: readonly OperandSpec[];
  /** Shapes of the f32 VMEM scratch buffers (e.g. the accumulator), zero-filled per call and kept across its steps. */
  readonly scratch: readonly (readonly number[])[];
  /** Static arguments baked into the program (flags, modes): part of the compile signature. */
  readonly statics: Readonly<Record<string, string | number | boolean>>;
  /** The kernel body, run once per grid step; it must report its MXU work through `ctx.chargeMatmul`. */
  readonly body: (ctx: StepContext) => void;
  /**
   * Block skipping as a Pallas TPU kernel does it: for a step whose body issues no MXU work, every
   * input index map returns the block index of the step before, so the pipeline starts no DMA.
   * Decided from grid indices and scalar-prefetched arrays only (what an index map may read).
   * The interpreter checks that a step reported skipped really charges no matmul, so skipped steps
   * never cost HBM bytes. Optional: without it every step fetches the blocks its index maps name.
   */
  readonly skipStep?: (grid: readonly number[], prefetch: readonly Int32Array[]) => boolean;
}

/** What one run of a compiled program cost, counted by the interpreter while it ran; the input of the per-op roofline. */
export interface KernelRun {
  /** The kernel's `KernelDef.name`. */
  readonly name: string;
  /** HBM bytes moved: scalar prefetch, each input block DMA'd when its index changed, each output block written back. */
  readonly hbmBytes: number;
  /** MXU FLOPs issued: 2·m·k·n per charged matmul, m rounded up to 8 sublanes and k, n to the MXU tile. */
  readonly mxuFlops: number;
  /** Matmuls charged over all steps. */
  readonly matmuls: number;
  /** Grid steps run: the product of the grid. */
  readonly gridSteps: number;
  /** Steps whose body issued no matmul (block skipping). */
  readonly stepsSkipped: number;
  /** Double-buffered input and output blocks plus scratch: what the program needs in VMEM. */
  readonly vmemBytes: number;
}

/** A compiled program: one per compile signature in a {@link ProgramCache}, runnable on arrays of the compiled shapes. */
export interface Program {
  /** The compile signature: name, grid, dimension semantics, prefetch count, operands (dtype, shape, block), scratch and statics. */
  readonly signature: string;
  /**
   * Runs the kernel over its whole grid and returns what it cost. Arrays must match the compiled
   * shapes and dtypes (else `LoRAError('E_SHAPE')`); outputs are written in place.
   * @param prefetch - the scalar-prefetch arrays, `numPrefetch` of them
   * @param inputs - one array per input operand
   * @param outputs - one array per output operand
   */
  run(prefetch: readonly Int32Array[], inputs: readonly HbmArray[], outputs: readonly HbmArray[]): KernelRun;
}

/** What makes two calls the same XLA program: everything static, nothing data-dependent. */
function signatureOf(def: KernelDef): string {
  const operand = (o: OperandSpec) => `${o.dtype}[${o.shape}]/[${o.spec.block}]`;
  const statics = Object.keys(def.statics)
    .sort()
    .map((k) => `${k}=${def.statics[k]}`);
  return [
    def.name,
    `grid=[${def.grid}]`,
    `dims=[${def.dimensions}]`,
    `prefetch=${def.numPrefetch}`,
    `in=${def.inputs.map(operand).join(',')}`,
    `out=${def.outputs.map(operand).join(',')}`,
    `scratch=${def.scratch.map((s) => `[${s}]`).join(',')}`,
    statics.join(','),
  ].join(';');
}

/** A compile cache: one per simulated device, counting compiles like XLA's program cache. */
export class ProgramCache {
  readonly #programs = new Map<string, Program>();
  readonly #mxu: number;
  /** Programs compiled so far (distinct signatures): what `TpuSimStats.programsCompiled` reports. */
  compiled = 0;

  constructor(mxu: number) {
    this.#mxu = mxu;
  }

  /** Signatures of every program compiled so far, in compile order. */
  signatures(): string[] {
    return [...this.#programs.keys()];
  }

  /** The program for `def`'s signature, compiled (validated, frozen) the first time it is seen. */
  compile(def: KernelDef): Program {
    const signature = signatureOf(def);
    let program = this.#programs.get(signature);
    if (program === undefined) {
      validate(def);
      program = { signature, run: (p, i, o) => runKernel(def, p, i, o, this.#mxu) };
      this.#programs.set(signature, program);
      this.compiled++;
    }
    return program;
  }
}

function fail(def: KernelDef, message: string): never {
  throw new LoRAError('E_SHAPE', `tpu-sim kernel ${def.name}: ${message}`);
}

function validate(def: KernelDef): void {
  if (def.grid.length !== def.dimensions.length) fail(def, `grid [${def.grid}] has ${def.dimensions.length} dimension semantics`);
  if (def.grid.some((g) => !Number.isInteger(g) || g < 1)) fail(def, `grid [${def.grid}] must be positive integers`);
  // A reduction ("arbitrary") axis must iterate innermost so its output block stays resident.
  const firstArbitrary = def.dimensions.indexOf('arbitrary');
  if (firstArbitrary >= 0 && def.dimensions.slice(firstArbitrary).some((d) => d !== 'arbitrary')) {
    fail(def, `arbitrary (reduction) axes must come after parallel ones, got [${def.dimensions}]`);
  }
  for (const o of [...def.inputs, ...def.outputs]) {
    if (o.spec.block.length !== o.shape.length) fail(def, `block [${o.spec.block}] does not match array rank of [${o.shape}]`);
    o.shape.forEach((n, d) => {
      const b = o.spec.block[d] as number;
      if (b < 1 || n % b !== 0) fail(def, `block [${o.spec.block}] does not tile padded array [${o.shape}]`);
    });
  }
}

const product = (xs: readonly number[]): number => xs.reduce((a, b) => a * b, 1);
const roundUp = (x: number, m: number): number => Math.ceil(x / m) * m;

function runKernel(
  def: KernelDef,
  prefetch: readonly Int32Array[],
  inputs: readonly HbmArray[],
  outputs: readonly HbmArray[],
  mxu: number,
): KernelRun {
  if (prefetch.length !== def.numPrefetch) fail(def, `${prefetch.length} prefetch arrays, expected ${def.numPrefetch}`);
  const check = (arrays: readonly HbmArray[], specs: readonly OperandSpec[], what: string) => {
    if (arrays.length !== specs.length) fail(def, `${arrays.length} ${what}, expected ${specs.length}`);
    arrays.forEach((a, i) => {
      const s = specs[i] as OperandSpec;
      if (a.dtype !== s.dtype || a.shape.join() !== s.shape.join()) {
        fail(def, `${what}[${i}] is ${a.dtype}[${a.shape}], the program was compiled for ${s.dtype}[${s.shape}]`);
      }
    });
  };
  check(inputs, def.inputs, 'inputs');
  check(outputs, def.outputs, 'outputs');

  const grid = def.grid;
  const g = new Array<number>(grid.length).fill(0);
  const blockOf = (array: HbmArray, spec: OperandSpec): Block => ({ array, origin: spec.shape.map(() => 0), shape: spec.spec.block });
  const inBlocks = inputs.map((a, i) => blockOf(a, def.inputs[i] as OperandSpec));
  const outBlocks = outputs.map((a, i) => blockOf(a, def.outputs[i] as OperandSpec));
  const blockBytes = (o: OperandSpec) => product(o.spec.block) * DTYPE_BYTES[o.dtype];
  const scratch = def.scratch.map((shape) => new Float32Array(product(shape)));
  const lastIn: (string | undefined)[] = inputs.map(() => undefined);
  const lastOut: (string | undefined)[] = outputs.map(() => undefined);

  let hbmBytes = prefetch.reduce((n, p) => n + p.length * 4, 0); // scalar prefetch: copied to SMEM once
  let mxuFlops = 0;
  let matmuls = 0;
  let stepMatmuls = 0;
  let stepsSkipped = 0;

  const ctx: StepContext = {
    programId: (axis) => g[axis] as number,
    numPrograms: (axis) => grid[axis] as number,
    prefetch,
    inputs: inBlocks,
    outputs: outBlocks,
    scratch,
    when: (cond, fn) => {
      if (cond) fn();
    },
    chargeMatmul: (m, k, n) => {
      // Rows stream through the array in sublane groups of 8; k and n occupy whole MXU tiles.
      mxuFlops += 2 * roundUp(m, 8) * roundUp(k, mxu) * roundUp(n, mxu);
      matmuls++;
      stepMatmuls++;
    },
  };

  // Moves a block view to its index for this step; true when the index changed (a DMA).
  const place = (block: Block, spec: OperandSpec, last: (string | undefined)[], i: number): boolean => {
    const index = spec.spec.index(g, prefetch);
    const key = index.join();
    index.forEach((b, d) => {
      if (!Number.isInteger(b) || b < 0 || (b + 1) * (spec.spec.block[d] as number) > (spec.shape[d] as number)) {
        fail(def, `block index [${index}] out of range for array [${spec.shape}] with block [${spec.spec.block}] at grid [${g}]`);
      }
      block.origin[d] = b * (spec.spec.block[d] as number);
    });
    const moved = key !== last[i];
    last[i] = key;
    return moved;
  };

  const steps = product(grid);
  for (let step = 0; step < steps; step++) {
    let rest = step;
    for (let d = grid.length - 1; d >= 0; d--) {
      g[d] = rest % (grid[d] as number);
      rest = Math.floor(rest / (grid[d] as number));
    }
    // A skipped step keeps the previous input blocks (its index maps repeat the last index): no DMA.
    const skipped = def.skipStep?.(g, prefetch) ?? false;
    if (!skipped) {
      inBlocks.forEach((b, i) => {
        const spec = def.inputs[i] as OperandSpec;
        if (place(b, spec, lastIn, i)) hbmBytes += blockBytes(spec);
      });
    }
    outBlocks.forEach((b, i) => {
      const spec = def.outputs[i] as OperandSpec;
      const before = lastOut[i];
      if (place(b, spec, lastOut, i) && before !== undefined) hbmBytes += blockBytes(spec); // the previous block is written back
    });
    stepMatmuls = 0;
    def.body(ctx);
    if (skipped && stepMatmuls > 0) fail(def, `step [${g}] was declared skipped but issued ${stepMatmuls} matmul(s)`);
    if (stepMatmuls === 0) stepsSkipped++;
  }
  hbmBytes += def.outputs.reduce((n, o) => n + blockBytes(o), 0); // final write-back of each output's last block

  const vmemBytes =
    2 * [...def.inputs, ...def.outputs].reduce((n, o) => n + blockBytes(o), 0) + def.scratch.reduce((n, s) => n + product(s) * 4, 0);
  return { name: def.name, hbmBytes, mxuFlops, matmuls, gridSteps: steps, stepsSkipped, vmemBytes };
}
