import { overwriteFits } from '@lora/core/backend';
import { env, findBackend, type Tensor } from '@tensorflow/tfjs-core';

/** What this file reads of tfjs-backend-webgl's per-tensor record (not in its typings). */
interface TexData {
  values?: unknown;
  /** `texShape` here is the physical `[height, width]` in texels (gpgpu_util createAndConfigureTexture). */
  texture?: PhysicalTexture | null;
  /** The logical texture shape tfjs laid the tensor out for (a packed one: before halving). */
  texShape?: [number, number] | null;
  /** The shape the texture was laid out for (a reshape of a disposed tensor keeps its layout). */
  shape?: readonly number[];
  isPacked?: boolean;
  /** tfjs' TextureUsage: null or 0 (RENDER) for program outputs and uploaded tensors; others are staging or read-back textures. */
  usage?: number | null;
  refCount: number;
  slice?: unknown;
}

interface PhysicalTexture {
  texture: WebGLTexture;
  texShape: [number, number];
}

/** What this file reads of tfjs-backend-webgl's backend object. */
interface WebGLInternals {
  texData: { get(id: object): TexData | undefined };
  /** Views that share a tensor's texture (tfjs' shallow slices), counted by the tensor's data id; absent when none. */
  dataRefCount?: { get(id: object): number | undefined };
  gpgpu: { gl: WebGLRenderingContext | WebGL2RenderingContext; textureConfig: { textureFormatFloat: number } };
}

/** A run of texels to write: where they start in the texture's row-major texel order, and their channels. */
interface TexelRun {
  start: number;
  data: Float32Array;
  /** Floats per texel: 4 (RGBA) in packed textures, 1 (RED) in unpacked ones. */
  channels: number;
  format: number;
}

/**
 * `LoRABackend.overwrite` on tfjs-backend-webgl: an activated adapter goes into its slot of a stack
 * with `texSubImage2D` calls of its own bytes (issue #17: slot-only uploads), instead of a new stack
 * uploaded whole (tfjs uploads a tensor through a temporary texture and an encode program). Values
 * tfjs holds on the host (a stack not uploaded yet, or one read back, which tfjs caches beside its
 * texture) are written too.
 *
 * The texel layouts are tfjs-backend-webgl's (4.x; `shader_compiler.js`, `encode_matrix_packed_gpu.js`):
 * an unpacked float texture holds element i at texel i in row-major order, one float (RED) each; a
 * packed one holds 2 × 2 blocks of the last two dimensions, `[r, c], [r, c+1], [r+1, c], [r+1, c+1]`
 * in RGBA, the blocks of one matrix ("batch") contiguous in row-major texel order, unused lanes 0.
 * GL runs commands in the order they are issued, so a draw issued before this write still reads the
 * slot's old values, as on the other backends.
 *
 * Returns false (the caller makes the stack anew) where the write would reach more than this tensor
 * (data shared with another tensor, a slice view of it or one it is), where the texture is not
 * float32 (half-float devices, WebGL1), where a packed write would not cover whole matrices, or for
 * a range past the tensor. Nothing is written then.
 */
export function overwriteOnTexture(t: Tensor, offset: number, values: Float32Array): boolean {
  const webgl = findBackend('webgl') as unknown as WebGLInternals | null;
  const data = webgl?.texData.get(t.dataId);
  if (webgl == null || data === undefined || data.refCount !== 1 || data.slice != null) return false;
  // A continuous tf.slice of a texture is a view on it (same texture, same host array): it would change too.
  if ((webgl.dataRefCount?.get(t.dataId) ?? 1) > 1) return false;
  if (!overwriteFits(t, offset, values)) return false;
  const host = data.values;
  const onHost = host instanceof Float32Array && host.length === t.size;
  if (host != null && !onHost) return false;
  // Every copy that exists is written, or none: a texture this file cannot write refuses the whole write.
  const texture = data.texture ?? null;
  const run = texture === null ? null : texelRun(webgl, t, data, offset, values);
  if (texture === null ? !onHost : run === null) return false;
  if (texture !== null && run !== null) writeTexels(webgl.gpgpu.gl as WebGL2RenderingContext, texture, run);
  if (onHost) host.set(values, offset);
  return true;
}

/**
 * The texels `values` at element `offset` become, or null where this file does not write that
 * texture: not WebGL2 with float32 textures, a layout other than the two above (tfjs' dense-packed
 * intermediates), a texture laid out for another shape.
 */
function texelRun(webgl: WebGLInternals, t: Tensor, data: TexData, offset: number, values: Float32Array): TexelRun | null {
  const gl = webgl.gpgpu.gl;
  const isWebGL2 = typeof WebGL2RenderingContext !== 'undefined' && gl instanceof WebGL2RenderingContext;
  // Rendered textures are half floats where float32 rendering is off: their bytes are not these.
  if (!isWebGL2 || !env().getBool('WEBGL_RENDER_FLOAT32_ENABLED')) return null;
  const shape = t.shape;
  const logical = data.texShape;
  const physical = data.texture?.texShape;
  if (logical == null || physical == null || (data.shape !== undefined && !sameShape(data.shape, shape))) return null;
  if (data.usage != null && data.usage !== 0) return null;
  const packed = data.isPacked === true;
  // The layouts below hold only where the texture has the size tfjs gives that layout.
  const expected = packed ? [Math.ceil(logical[0] / 2), Math.ceil(logical[1] / 2)] : logical;
  if (physical[0] !== expected[0] || physical[1] !== expected[1]) return null;
  if (!packed) {
    if (webgl.gpgpu.textureConfig.textureFormatFloat !== gl.RED || t.size > physical[0] * physical[1]) return null;
    return { start: offset, data: values, channels: 1, format: gl.RED };
  }
  if (shape.length < 2) return null;
  const rows = shape[shape.length - 2] as number;
  const cols = shape[shape.length - 1] as number;
  const matrix = rows * cols;
  if (matrix === 0 || offset % matrix !== 0 || values.length % matrix !== 0) return null;
  const texelRows = Math.ceil(rows / 2);
  const texelCols = Math.ceil(cols / 2);
  const texelsPerMatrix = texelRows * texelCols;
  if ((t.size / matrix) * texelsPerMatrix > physical[0] * physical[1]) return null;
  const matrices = values.length / matrix;
  const out = new Float32Array(matrices * texelsPerMatrix * 4);
  for (let m = 0; m < matrices; m++) {
    for (let r = 0; r < rows; r++) {
      const src = m * matrix + r * cols;
      const texelRow = (m * texelsPerMatrix + (r >> 1) * texelCols) * 4 + (r & 1) * 2;
      for (let c = 0; c < cols; c++) out[texelRow + (c >> 1) * 4 + (c & 1)] = values[src + c] as number;
    }
  }
  return { start: (offset / matrix) * texelsPerMatrix, data: out, channels: 4, format: gl.RGBA };
}

const sameShape = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

/** `run` into the texture: a partial first row, whole rows, a partial last row (row-major texel order). */
function writeTexels(gl: WebGL2RenderingContext, texture: PhysicalTexture, run: TexelRun): void {
  const width = texture.texShape[1];
  const { data, channels, format } = run;
  const count = data.length / channels;
  gl.bindTexture(gl.TEXTURE_2D, texture.texture);
  let done = 0;
  while (done < count) {
    const at = run.start + done;
    const row = Math.floor(at / width);
    const col = at % width;
    // From a row's start, as many whole rows as remain; otherwise to the end of this row.
    const rows = col === 0 ? Math.max(1, Math.floor((count - done) / width)) : 1;
    const span = col === 0 && rows > 1 ? width : Math.min(width - col, count - done);
    gl.texSubImage2D(gl.TEXTURE_2D, 0, col, row, span, rows, format, gl.FLOAT, data, done * channels);
    done += span * rows;
  }
  // As tfjs' own uploads leave it (gpgpu_util uploadDenseMatrixToTexture).
  gl.bindTexture(gl.TEXTURE_2D, null);
}
