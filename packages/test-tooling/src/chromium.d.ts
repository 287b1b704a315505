/** Debian's Chromium, the project's test browser. */
export declare const CHROMIUM_PATH: string;
/** Headless flags: no sandbox (root in CI), no network chatter, WebGL and WebGPU through SwiftShader. */
export declare const CHROMIUM_ARGS: string[];
