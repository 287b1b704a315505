/**
 * Debian's Chromium as the project's test browser: headless, no sandbox (root in CI), no network
 * chatter (the sandbox has no network), WebGL and WebGPU through SwiftShader. One list for the
 * vitest browser projects and the playground's end-to-end test.
 */
export const CHROMIUM_PATH = '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--enable-unsafe-swiftshader',
  '--use-angle=swiftshader',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
