import { defineProject } from 'vitest/config';

// The end-to-end test runs in Node and drives Chromium itself (playwright-core).
export default defineProject({
  ssr: { resolve: { conditions: ['@lora/source', 'module', 'node', 'development|production'] } },
  test: { name: 'playground', environment: 'node', include: ['src/**/*.test.ts'] },
});
