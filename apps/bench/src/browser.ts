import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '@lora/test-tooling/chromium';
import { chromium } from 'playwright-core';
import { createServer } from 'vite';
import type { BrowserResult, BrowserTask } from './browser-task.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Runs a bench task on each backend in Chromium (Debian's, through playwright-core) on a Vite dev
 * server serving browser/index.html, and returns what each page measured; the page reports its
 * progress through `onProgress`. A page error ends the run at once rather than at the timeout.
 */
export async function runInChromium(
  backends: readonly string[],
  /** One task for every backend, or one per backend. */
  task: BrowserTask | ((backend: string) => BrowserTask),
  onProgress?: (line: string) => void,
): Promise<BrowserResult[]> {
  const server = await createServer({
    root,
    logLevel: 'error',
    server: { host: '127.0.0.1', port: 0, fs: { allow: [join(root, '..', '..')] } },
    resolve: { conditions: ['@lora/source', 'browser', 'module', 'import', 'default'] },
    optimizeDeps: {
      entries: [join(root, 'browser', 'index.html')],
      exclude: ['@lora/core', '@lora/llama', '@lora/backend-webgl', '@lora/backend-webgpu'],
      include: [
        '@tensorflow/tfjs-core',
        '@tensorflow/tfjs-backend-webgl',
        '@tensorflow/tfjs-backend-webgpu',
        '@tensorflow/tfjs-backend-cpu',
      ],
    },
  });
  await server.listen();
  const address = server.httpServer?.address();
  const port = typeof address === 'object' && address ? address.port : 5173;
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
  try {
    const results: BrowserResult[] = [];
    for (const backend of backends) {
      const page = await browser.newPage();
      await page.exposeFunction('__loraProgress', (label: string) => onProgress?.(`chromium ${label}`));
      const query = new URLSearchParams({ backend, task: JSON.stringify(typeof task === 'function' ? task(backend) : task) });
      const failed = new Promise<never>((_, reject) => page.on('pageerror', (e) => reject(new Error(`${backend} page: ${e.message}`))));
      await page.goto(`http://127.0.0.1:${port}/browser/index.html?${query}`);
      await Promise.race([
        page.waitForFunction(() => (window as unknown as { __loraBench?: unknown }).__loraBench !== undefined, null, {
          timeout: 3_600_000,
        }),
        failed,
      ]);
      results.push(await page.evaluate(() => (window as unknown as { __loraBench: BrowserResult }).__loraBench));
      await page.close();
    }
    return results;
  } finally {
    await browser.close();
    await server.close();
  }
}
