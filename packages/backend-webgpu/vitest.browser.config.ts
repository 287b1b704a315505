import { browserTestProject } from '@lora/test-tooling/vitest-browser';

// The same conformance suite in real Chromium (Debian's), WebGPU through SwiftShader.
export default browserTestProject('backend-webgpu', '@tensorflow/tfjs-backend-webgpu');
