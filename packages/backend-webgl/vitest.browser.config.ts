import { browserTestProject } from '@lora/test-tooling/vitest-browser';

// The conformance suite in real Chromium (Debian's): WebGL2 through ANGLE on SwiftShader.
export default browserTestProject('backend-webgl', '@tensorflow/tfjs-backend-webgl');
