import { browserTestProject } from '../conformance/src/vitest-browser.js';

// The same conformance suite in real Chromium (Debian's), WebGPU through SwiftShader.
export default browserTestProject('backend-webgpu', '@tensorflow/tfjs-backend-webgpu');
