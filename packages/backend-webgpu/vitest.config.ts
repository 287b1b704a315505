import { existsSync } from 'node:fs';
import { defineProject } from 'vitest/config';

// WebGPU in Node: dawn (the `webgpu` package) on Vulkan through SwiftShader, the ICD Debian's
// Chromium ships (lavapipe 22.3 is rejected by Dawn). Set before any worker starts.
const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';
if (existsSync(SWIFTSHADER)) process.env.VK_ICD_FILENAMES ??= SWIFTSHADER;

export default defineProject({
  ssr: { resolve: { conditions: ['@lora/source', 'module', 'node', 'development|production'] } },
  test: {
    name: 'backend-webgpu',
    environment: 'node',
    exclude: ['**/node_modules/**', '**/*.browser.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
