/**
 * Published per-chip figures for the TPU generations the cost model knows. Sources:
 * - Google Cloud TPU docs, "TPU v5e" and "TPU v6e" system-architecture pages
 *   (docs.cloud.google.com/tpu/docs/v5e, docs.cloud.google.com/tpu/docs/v6e, section "System
 *   architecture", key-specification tables): peak bf16 FLOP/s, HBM capacity and bandwidth,
 *   bidirectional inter-chip-interconnect (ICI) bandwidth per chip, ICI ports per chip, MXU shape
 *   (v6e: "two 256x256 matrix-multiply units"; v5e: four 128×128 MXUs), chips per host (8).
 * - The JAX scaling book ("How to Scale Your Model", jax-ml/scaling-book, sharding.md, section on
 *   AllGather cost, "a note on ICI latency"): each ICI hop has an intrinsic overhead of about 1 µs.
 * - VMEM size: jax-ml/scaling-book tpus.md (128 MiB of VMEM on v5e/v6e).
 */
export interface ChipSpec {
  /** TPU generation: the key in {@link CHIPS} and the value of `backendOptions.chip`. */
  readonly name: 'v5e' | 'v6e';
  /** Peak dense bf16 matmul throughput of one chip, FLOP/s. */
  readonly peakBf16Flops: number;
  /** HBM bandwidth, bytes/s. */
  readonly hbmBytesPerSecond: number;
  /** HBM capacity, bytes. */
  readonly hbmBytes: number;
  /** Side of the (square) MXU systolic array: matmul operands are padded to multiples of it. */
  readonly mxu: number;
  /** On-chip vector memory where Pallas blocks and scratch live. */
  readonly vmemBytes: number;
  /** Bidirectional ICI bandwidth of one chip over all its ports, bytes/s. */
  readonly iciBidirectionalBytesPerSecond: number;
  /** ICI ports per chip (the bandwidth above is split evenly over them). */
  readonly iciPorts: number;
  /** Intrinsic latency of one ICI hop, seconds (scaling book: "typically around 1us"). */
  readonly iciHopSeconds: number;
}

/** The chips the cost model can price, by name; `backendOptions.chip` picks one (default 'v6e'). */
export const CHIPS: Readonly<Record<ChipSpec['name'], ChipSpec>> = Object.freeze({
  // v5e: 197 TFLOP/s bf16, 16 GB HBM2 at 819 GB/s, 4 MXUs of 128×128, 400 GB/s bidirectional ICI over 4 ports.
  v5e: {
    name: 'v5e',
    peakBf16Flops: 197e12,
    hbmBytesPerSecond: 819e9,
    hbmBytes: 16e9,
    mxu: 128,
    vmemBytes: 128 * 2 ** 20,
    iciBidirectionalBytesPerSecond: 400e9,
    iciPorts: 4,
    iciHopSeconds: 1e-6,
  },
  // v6e (Trillium): 918 TFLOP/s bf16, 32 GB HBM at 1638 GB/s (the v6e page's figure; "1640" elsewhere),
  // 2 MXUs of 256×256, 800 GB/s bidirectional ICI over 4 ports.
  v6e: {
    name: 'v6e',
    peakBf16Flops: 918e12,
    hbmBytesPerSecond: 1638e9,
    hbmBytes: 32e9,
    mxu: 256,
    vmemBytes: 128 * 2 ** 20,
    iciBidirectionalBytesPerSecond: 800e9,
    iciPorts: 4,
    iciHopSeconds: 1e-6,
  },
});

/**
 * Fixed cost of one Pallas grid step (pipeline bookkeeping, DMA issue and semaphore waits): the
 * Pallas TPU docs ("Pipelining" / matmul tutorial) quote roughly 0.35 µs per grid step, which is
 * why small blocks lose even when they waste no FLOPs. A parameter, not a constant of nature.
 */
export const DEFAULT_STEP_OVERHEAD_SECONDS = 0.35e-6;
