import { describeBackend } from '@lora/conformance';
import { createCpuBackend } from './index.js';

describeBackend(() => createCpuBackend(), { name: 'cpu' });
