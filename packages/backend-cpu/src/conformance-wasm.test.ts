import { describeBackend } from '@lora/conformance';
import { createCpuBackend } from './index.js';

// Engine "wasm": tfjs-backend-wasm with the SIMD kernels working on its heap.
describeBackend(() => createCpuBackend({ engine: 'wasm' }), { name: 'cpu (engine wasm, SIMD)' });
