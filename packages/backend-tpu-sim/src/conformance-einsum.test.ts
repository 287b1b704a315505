import { describeBackend } from '@lora/conformance';
import { createTpuSimBackend } from './index.js';

// DESIGN.md's tpu-sim accuracy promise: bf16 operands with f32 accumulation, ≤ 3e-2 per row.
describeBackend(() => createTpuSimBackend({ preset: 'einsum' }), { name: 'tpu-sim (preset einsum)', tolerance: 3e-2 });
