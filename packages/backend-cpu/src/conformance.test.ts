import { describeBackend } from '@lora/conformance';
import { createCpuBackend } from './index.js';

// Engine "js": tfjs "cpu" with the scalar typed-array kernels.
describeBackend(() => createCpuBackend({ engine: 'js' }), { name: 'cpu (engine js)' });
