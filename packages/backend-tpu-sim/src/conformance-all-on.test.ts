import { describeBackend } from '@lora/conformance';
import { createTpuSimBackend } from './index.js';

// DESIGN.md's tpu-sim accuracy promise: bf16 operands with f32 accumulation, ≤ 3e-2 per row.
describeBackend(() => createTpuSimBackend({ preset: 'all-on' }), { name: 'tpu-sim (preset all-on)', tolerance: 3e-2 });
