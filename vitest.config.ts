import SummaryReporter from '@lora/test-tooling/summary-reporter';
import { defineConfig } from 'vitest/config';

// `vitest run` at the root runs every package's and app's tests in one process, on src/ (no build).
export default defineConfig({
  test: {
    projects: ['packages/*', 'apps/*', 'packages/*/vitest.browser.config.ts'],
    reporters: ['default', new SummaryReporter()],
  },
});
