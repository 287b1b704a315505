import { playwright } from '@vitest/browser-playwright';
import { defineProject } from 'vitest/config';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../conformance/src/chromium.js';

// The conformance suite in real Chromium (Debian's): WebGL2 through ANGLE on SwiftShader.
export default defineProject({
  resolve: { conditions: ['@lora/source', 'browser', 'module', 'import', 'default'] },
  // Pre-bundled up front: a dependency found mid-run (our dynamic import of tfjs-backend-webgl) would reload the page.
  optimizeDeps: {
    noDiscovery: true,
    exclude: ['@lora/core', '@lora/conformance'],
    include: ['@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-webgl', '@tensorflow/tfjs-backend-cpu', 'fast-check'],
  },
  test: {
    name: 'backend-webgl (chromium)',
    include: ['src/**/*.browser.test.ts'],
    testTimeout: 120_000,
    browser: {
      enabled: true,
      headless: true,
      provider: playwright({
        launchOptions: {
          executablePath: CHROMIUM_PATH,
          args: CHROMIUM_ARGS,
        },
      }),
      instances: [{ browser: 'chromium' }],
    },
  },
});
