/**
 * Published per-chip figures for the TPU generations the cost model knows. Sources: Google Cloud
 * TPU docs ("TPU v5e" and "TPU v6e (Trillium)" system architecture pages) for peak bf16 FLOP/s,
 * HBM capacity and bandwidth; the JAX scaling book ("How to Scale Your Model", TPU chapter) for
 * MXU shapes and VMEM size.
 */
export interface ChipSpec {
  readonly name: 'v5e' | 'v6e';
  /** Peak dense bf16 matmul throughput of one chip, FLOP/s. */
  readonly peakBf16Flops: number;
  /** HBM bandwidth, bytes/s. */
  readonly hbmBytesPerSecond: number;
  readonly hbmBytes: number;
  /** Side of the (square) MXU systolic array: matmul operands are padded to multiples of it. */
  readonly mxu: number;
  /** On-chip vector memory where Pallas blocks and scratch live. */
  readonly vmemBytes: number;
}

const GiB = 2 ** 30;

export const CHIPS: Readonly<Record<ChipSpec['name'], ChipSpec>> = Object.freeze({
  // v5e: 197 TFLOP/s bf16, 16 GiB HBM2 at 819 GB/s, 4 MXUs of 128×128 per TensorCore.
  v5e: { name: 'v5e', peakBf16Flops: 197e12, hbmBytesPerSecond: 819e9, hbmBytes: 16 * GiB, mxu: 128, vmemBytes: 128 * 2 ** 20 },
  // v6e (Trillium): 918 TFLOP/s bf16, 32 GiB HBM at 1640 GB/s, 2 MXUs of 256×256 per TensorCore.
  v6e: { name: 'v6e', peakBf16Flops: 918e12, hbmBytesPerSecond: 1640e9, hbmBytes: 32 * GiB, mxu: 256, vmemBytes: 128 * 2 ** 20 },
});

/**
 * Fixed cost of one Pallas grid step (pipeline bookkeeping, DMA issue and semaphore waits): the
 * Pallas TPU docs ("Pipelining" / matmul tutorial) quote roughly 0.35 µs per grid step, which is
 * why small blocks lose even when they waste no FLOPs. A parameter, not a constant of nature.
 */
export const DEFAULT_STEP_OVERHEAD_SECONDS = 0.35e-6;
