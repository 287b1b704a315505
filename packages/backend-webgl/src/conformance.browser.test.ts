import { describeBackend, GPU_SKIPS } from '@lora/conformance';
import { createWebGLBackend } from './index.js';

// Chromium, WebGL2 through ANGLE on SwiftShader (float32 textures).
describeBackend(() => createWebGLBackend(), {
  name: 'webgl (chromium)',
  timeoutMs: 120_000,
  // Shrink and expand, each reading the slot from a uniform or an index texture, each twice:
  // tfjs bakes into a packed sampler whether the input's texture has its logical shape (T even).
  maxPrograms: 8,
  skip: GPU_SKIPS,
});
