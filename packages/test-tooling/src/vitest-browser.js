import { playwright } from '@vitest/browser-playwright';
import { defineProject } from 'vitest/config';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from './chromium.js';

/**
 * The vitest project that runs a GPU backend's `*.browser.test.ts` in Debian's Chromium
 * (headless, SwiftShader). `tfjsBackend` is the tfjs package the backend imports lazily.
 * @param {string} name
 * @param {string} tfjsBackend
 */
export function browserTestProject(name, tfjsBackend) {
  return defineProject({
    resolve: { conditions: ['@lora/source', 'browser', 'module', 'import', 'default'] },
    // Pre-bundled up front: a dependency found mid-run (the backend's dynamic import of its tfjs
    // backend) would make Vite reload the page in the middle of a test file.
    optimizeDeps: {
      noDiscovery: true,
      exclude: ['@lora/core', '@lora/conformance'],
      include: ['@tensorflow/tfjs-core', tfjsBackend, '@tensorflow/tfjs-backend-cpu', 'fast-check'],
    },
    test: {
      name: `${name} (chromium)`,
      include: ['src/**/*.browser.test.ts'],
      testTimeout: 120_000,
      browser: {
        enabled: true,
        headless: true,
        provider: playwright({ launchOptions: { executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS } }),
        instances: [{ browser: 'chromium' }],
      },
    },
  });
}
