import { describeBackend } from '@lora/conformance';
import { createTpuSimBackend } from './index.js';

// docs/contract.md "Accuracy": the tpu-sim promise: bf16 operands with f32 accumulation, ≤ 3e-2 per row.
describeBackend(() => createTpuSimBackend({ preset: 'einsum' }), { name: 'tpu-sim (preset einsum)', tolerance: 3e-2 });
