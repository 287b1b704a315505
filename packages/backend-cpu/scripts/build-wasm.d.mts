/** Types for build-wasm.mjs (used by the test that keeps the embedded module in sync). */
export declare const ASC_FLAGS: string[];
export declare function compileKernels(): Promise<Uint8Array>;
export declare function moduleSource(binary: Uint8Array): string;
