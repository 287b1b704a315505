import { defineProject } from 'vitest/config';

// Tests run on src/: workspace packages resolve through their "@lora/source" export condition.
export default defineProject({
  ssr: { resolve: { conditions: ['@lora/source', 'module', 'node', 'development|production'] } },
  // forks: one process per test file, so servers, engines and tfjs state never leak between files.
  test: { name: 'server', environment: 'node', pool: 'forks' },
});
