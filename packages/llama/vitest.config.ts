import { defineProject } from 'vitest/config';

// Tests run on src/: workspace packages resolve through their "@lora/source" export condition.
export default defineProject({
  ssr: { resolve: { conditions: ['@lora/source', 'module', 'node', 'development|production'] } },
  test: { name: 'llama', environment: 'node' },
});
