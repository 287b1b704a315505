import { describeBackend } from '@lora/conformance';
import { createWebGLBackend } from './index.js';

// Chromium, WebGL2 through ANGLE on SwiftShader (float32 textures).
describeBackend(() => createWebGLBackend(), {
  name: 'webgl (chromium)',
  timeoutMs: 120_000,
  leakBatches: 300,
  // Shrink and expand, each reading the slot from a uniform, an index texture, or (T ≤ 4, where
  // tfjs uploads tiny tensors as uniform arrays, WEBGL_SIZE_UPLOAD_UNIFORM) an index uniform.
  maxPrograms: 6,
  skip: { 'token id outside the vocabulary': 'token ids are not read back from the GPU to be range-checked' },
});
