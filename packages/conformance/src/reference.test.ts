import '@tensorflow/tfjs-backend-cpu';
import { createReferenceBackend } from '@lora/core';
import { describeBackend } from './index.js';

// The suite tested against the oracle itself: if this fails, the suite (not a backend) is wrong.
describeBackend(() => createReferenceBackend(), { name: 'reference', leakBatches: 200 });
