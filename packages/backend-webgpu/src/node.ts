import { LoRAError } from '@lora/core';
import { isNode, nodeBuiltins } from '@lora/core/backend';

// A computed specifier: bundlers leave it alone, and a missing optional peer (Dawn) is a run-time
// question. It stays in this module: a bare specifier resolves from the importing file.
const importOptional = (specifier: string): Promise<unknown> => import(/* @vite-ignore */ specifier);

/** Where Debian's Chromium keeps SwiftShader's Vulkan driver (Dawn rejects Mesa's lavapipe 22.3). */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

/**
 * WebGPU in Node through Dawn (the `webgpu` package, an optional peer): installs its globals and
 * `navigator.gpu`. Call it before anything imports @tensorflow/tfjs-backend-webgpu, which only
 * registers itself when `navigator.gpu` exists (createWebGPUBackend calls it for you). Without a
 * Vulkan driver set, Chromium's SwiftShader is used when installed.
 */
export async function initNodeWebGPU(options: { vulkanIcd?: string } = {}): Promise<void> {
  const g = globalThis as { navigator?: { gpu?: unknown } };
  if (g.navigator?.gpu) return;
  if (!isNode()) {
    throw new LoRAError(
      'E_BACKEND',
      'WebGPU is not available in this browser (navigator.gpu is missing); Chromium needs a WebGPU-capable GPU or --enable-unsafe-webgpu',
    );
  }
  const icd = options.vulkanIcd ?? process.env.VK_ICD_FILENAMES;
  if (icd === undefined) {
    const { fs } = await nodeBuiltins('fs');
    if (
      await fs.access(SWIFTSHADER_ICD).then(
        () => true,
        () => false,
      )
    )
      process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
  } else process.env.VK_ICD_FILENAMES = icd;
  await ensureRuntimeDir();
  let dawn: { create(flags: string[]): unknown; globals: Record<string, unknown> };
  try {
    dawn = (await importOptional('webgpu')) as typeof dawn;
  } catch (err) {
    throw new LoRAError(
      'E_BACKEND',
      'WebGPU in Node needs the `webgpu` package (Dawn): run `npm install webgpu`, and a Vulkan driver (Debian: `apt-get install libvulkan1 chromium` for SwiftShader, or mesa-vulkan-drivers)',
      { cause: err },
    );
  }
  Object.assign(globalThis, dawn.globals);
  // navigator is a getter-only global in Node ≥ 21; define it rather than assign.
  Object.defineProperty(globalThis, 'navigator', {
    value: { ...(g.navigator ?? {}), gpu: dawn.create([]) },
    configurable: true,
    writable: true,
  });
}

/**
 * Dawn's Vulkan loader prints "error: XDG_RUNTIME_DIR is invalid or not set" twice to stderr when
 * the variable is missing (a container, CI, a service): noise in every command's output. Where it is
 * unset, point it at a private folder of our own (mode 0700, as the XDG spec asks) before Dawn loads.
 */
async function ensureRuntimeDir(): Promise<void> {
  if (process.env.XDG_RUNTIME_DIR) return;
  const { fs, os, path } = await nodeBuiltins('fs', 'os', 'path');
  const dir = path.join(os.tmpdir(), `lora-webgpu-runtime-${os.userInfo().uid}`);
  try {
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    process.env.XDG_RUNTIME_DIR = dir;
  } catch {
    // Only the warning is lost: Dawn works without the folder.
  }
}
