import { defineProject } from 'vitest/config';

// Tests run on src/: workspace packages resolve through their "@lora/source" export condition.
export default defineProject({
  ssr: { resolve: { conditions: ['@lora/source', 'module', 'node', 'development|production'] } },
  // forks: one process per test file, so the loader's peak-memory test measures its own process only.
  test: { name: 'llama', environment: 'node', pool: 'forks' },
});
