import { defineConfig } from 'vitest/config';

// `pnpm vitest` at the root runs every package's tests in one process (no build needed).
export default defineConfig({
  test: { projects: ['packages/*', 'apps/*'] },
});
