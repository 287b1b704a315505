import { defineConfig } from 'vite';

// Workspace packages are served from src/ through their "@lora/source" export condition, as in
// the tests: the page needs no build of the libraries.
export default defineConfig({
  root: __dirname,
  resolve: { conditions: ['@lora/source', 'browser', 'module', 'import', 'default'] },
  server: { host: '127.0.0.1', strictPort: false },
  build: { target: 'es2022' },
  optimizeDeps: { exclude: ['@lora/core', '@lora/backend-cpu', '@lora/backend-webgl', '@lora/backend-webgpu', '@lora/llama'] },
});
