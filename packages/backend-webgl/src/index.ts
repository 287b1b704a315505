import {
  checkBackendOptions,
  defineLoRABackend,
  type LoRABackend,
  LoRAError,
  MappingUploads,
  registerLoRABackend,
} from '@lora/core/backend';
import { findBackend } from '@tensorflow/tfjs-core';
import { webglKernels } from './kernels.js';
import { overwriteOnTexture } from './overwrite.js';
import { PROGRAM_MARKER } from './programs.js';

export { webglKernels } from './kernels.js';
export type { Uniform } from './programs.js';
export { ExpandProgram, ShrinkProgram } from './programs.js';

let probed: string | null | undefined;

/**
 * WebGL2 with renderable float32 textures, or why not (one line, for E_BACKEND). Probed once:
 * browsers cap live WebGL contexts (about 16 in Chromium) and evict the oldest, which would be
 * tfjs' own, so the probe's context is released at once and never created twice.
 */
export function webglProblem(): string | null {
  probed ??= probeWebGL();
  return probed;
}

function probeWebGL(): string | null {
  if (typeof document === 'undefined' && typeof OffscreenCanvas === 'undefined') {
    return 'WebGL needs a browser (no document or OffscreenCanvas here); in Node use backend "cpu" or "webgpu"';
  }
  const canvas = typeof OffscreenCanvas !== 'undefined' ? new OffscreenCanvas(1, 1) : document.createElement('canvas');
  const gl = canvas.getContext('webgl2') as WebGL2RenderingContext | null;
  if (!gl) return 'this browser has no WebGL2 context; the webgl backend needs WebGL2';
  const floatTargets = gl.getExtension('EXT_color_buffer_float') !== null;
  gl.getExtension('WEBGL_lose_context')?.loseContext();
  return floatTargets ? null : 'WebGL2 lacks EXT_color_buffer_float (float32 render targets), which the webgl backend needs';
}

/**
 * The token→slot index as uploaded: padded with -1 to an even length (a packed texel holds two
 * tokens) of at least 8, because tfjs uploads tensors of 4 values or fewer as uniform arrays,
 * which would compile another variant of every program.
 */
export function paddedIndex(tokenLoraIndices: Int32Array): Int32Array {
  const T = tokenLoraIndices.length;
  const out = new Int32Array(Math.max(8, T + (T & 1))).fill(-1);
  out.set(tokenLoraIndices);
  return out;
}

/**
 * The WebGL backend: GLSL fragment programs run by tfjs-backend-webgl (WebGL2 with
 * EXT_color_buffer_float; packed float32 RGBA textures throughout, no half floats). The token→slot
 * index is uploaded once per batch; single-adapter batches read the slot from a uniform; batches
 * without LoRA launch nothing (core). Weight stacks need no preparation: tfjs uploads a tensor
 * packed when a packed program is the first to read it, which these are. An activated adapter is
 * written into its slot of a live stack in place (`overwrite`, with `texSubImage2D`).
 */
export function createWebGLBackend(options: Readonly<Record<string, unknown>> = {}): LoRABackend {
  checkBackendOptions('webgl', options, []);
  const uploads = new MappingUploads();
  return defineLoRABackend({
    name: 'webgl',
    tfBackend: 'webgl',
    compilesPrograms: true,
    skipsPaddedRanks: true,
    kernels: webglKernels(),
    overwrite: overwriteOnTexture,
    install: '@tensorflow/tfjs-backend-webgl',
    async prepare() {
      const problem = webglProblem();
      if (problem) throw new LoRAError('E_BACKEND', problem);
      await import('@tensorflow/tfjs-backend-webgl');
    },
    /** The token→slot index, uploaded once per mapping; single-adapter batches read a uniform instead. */
    batch(meta) {
      if (meta.singleLoRA) return {};
      return { index: uploads.get(meta, (m) => ({ data: paddedIndex(m.tokenLoraIndices) })).index };
    },
    stats() {
      // tfjs caches compiled programs under keys that contain their source.
      const cache = (findBackend('webgl') as { binaryCache?: Record<string, unknown> } | null)?.binaryCache ?? {};
      const programsCompiled = Object.keys(cache).filter((k) => k.includes(PROGRAM_MARKER)).length;
      return { programsCompiled, ...uploads.held() };
    },
    dispose: () => uploads.dispose(),
  });
}

registerLoRABackend('webgl', createWebGLBackend);
