import { defineProject } from 'vitest/config';

// WebGL needs a browser (vitest.browser.config.ts); in Node only the "no WebGL" path is tested.
export default defineProject({
  ssr: { resolve: { conditions: ['@lora/source', 'module', 'node', 'development|production'] } },
  test: { name: 'backend-webgl', environment: 'node', exclude: ['**/node_modules/**', '**/*.browser.test.ts'] },
});
