import type { UserWorkspaceConfig } from 'vitest/config';

/**
 * The vitest project that runs a GPU backend's `*.browser.test.ts` in Debian's Chromium
 * (headless, SwiftShader). `tfjsBackend` is the tfjs package the backend imports lazily.
 */
export declare function browserTestProject(name: string, tfjsBackend: string): UserWorkspaceConfig;
