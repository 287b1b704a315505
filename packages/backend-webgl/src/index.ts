import {
  checkBackendOptions,
  type LoRABackend,
  LoRAError,
  type LoRAMapping,
  MappingUploads,
  registerLoRABackend,
  runExpandKernel,
  runShrinkKernel,
} from '@lora/core';
import { findBackend, getKernel, registerKernel, setBackend, type Tensor } from '@tensorflow/tfjs-core';
import { webglKernels } from './kernels.js';
import { PROGRAM_MARKER } from './programs.js';

export { webglKernels } from './kernels.js';
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
 * The WebGL backend: GLSL fragment programs run by tfjs-backend-webgl (WebGL2 with
 * EXT_color_buffer_float; float32 textures throughout, no half floats). The token→slot index is
 * uploaded once per batch; single-adapter batches read the slot from a uniform; batches without
 * LoRA launch nothing (core).
 */
export function createWebGLBackend(options: Readonly<Record<string, unknown>> = {}): LoRABackend {
  checkBackendOptions('webgl', options, []);
  const uploads = new MappingUploads();
  const indexFor = (meta: LoRAMapping): Record<string, Tensor> =>
    meta.singleLoRA ? {} : { idx: uploads.get(meta, (m) => m.tokenLoraIndices) };
  return {
    name: 'webgl',
    tfBackend: 'webgl',
    async init() {
      const problem = webglProblem();
      if (problem) throw new LoRAError('E_BACKEND', problem);
      await import('@tensorflow/tfjs-backend-webgl');
      for (const kernel of webglKernels()) if (getKernel(kernel.kernelName, kernel.backendName) === undefined) registerKernel(kernel);
      if (!(await setBackend('webgl'))) throw new LoRAError('E_BACKEND', 'tf.setBackend("webgl") failed');
    },
    shrink(x, loraA, meta, scale) {
      return runShrinkKernel(x, loraA, meta, scale, indexFor(meta));
    },
    expand(y, x, loraB, meta, outputSlices, offsetStart, addInputs) {
      return runExpandKernel(y, x, loraB, meta, outputSlices, offsetStart, addInputs, indexFor(meta));
    },
    stats() {
      // tfjs caches compiled programs under keys that contain their source.
      const cache = (findBackend('webgl') as { binaryCache?: Record<string, unknown> } | null)?.binaryCache ?? {};
      const programsCompiled = Object.keys(cache).filter((k) => k.includes(PROGRAM_MARKER)).length;
      return { programsCompiled, ...uploads.held() };
    },
    dispose() {
      uploads.dispose();
    },
  };
}

registerLoRABackend('webgl', createWebGLBackend);
