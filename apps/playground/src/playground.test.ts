import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '@lora/test-tooling/chromium';
import { type Browser, chromium, type Page } from 'playwright-core';
import { createServer, type ViteDevServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const shots = join(root, 'test-results');

let server: ViteDevServer;
let browser: Browser;
let url: string;

beforeAll(async () => {
  server = await createServer({
    configFile: join(root, 'vite.config.ts'),
    root,
    logLevel: 'error',
    server: { port: 0, host: '127.0.0.1' },
  });
  await server.listen();
  const address = server.httpServer?.address();
  url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 5173}/`;
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? CHROMIUM_PATH, args: CHROMIUM_ARGS });
  await mkdir(shots, { recursive: true });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

async function runIn(page: Page, backend: string): Promise<{ state: string; text: string }> {
  await page.selectOption('#backend', backend);
  await page.selectOption('#preset', 'tiny');
  await page.fill('#requests', '6');
  await page.click('#run');
  await page.waitForFunction(() => ['done', 'error'].includes(document.querySelector('#status')?.getAttribute('data-state') ?? ''), null, {
    timeout: 120_000,
  });
  return {
    state: (await page.getAttribute('#status', 'data-state')) ?? '',
    text: (await page.textContent('#status')) ?? '',
  };
}

describe('playground in Chromium', () => {
  it.each(['cpu:wasm', 'cpu:js', 'webgpu', 'webgl'])(
    'serves the queue on %s and every request PASSes against merged weights',
    async (backend) => {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      await page.goto(url);
      const { state, text } = await runIn(page, backend);
      expect(text, errors.join('\n')).toBe('done: 6/6 PASS');
      expect(state).toBe('done');
      const verdicts = await page.$$eval('#rows td:last-child', (tds) => tds.map((td) => td.textContent ?? ''));
      expect(verdicts).toHaveLength(6);
      expect(verdicts.every((v) => v.startsWith('PASS'))).toBe(true);
      const summary: Record<string, RegExp> = {
        'cpu:wasm': /^cpu on tfjs wasm \(SIMD kernels\): 6\/6 requests PASS/,
        'cpu:js': /^cpu on tfjs cpu: 6\/6 requests PASS/,
        webgpu: /^webgpu on tfjs webgpu: 6\/6 requests PASS/,
        webgl: /^webgl on tfjs webgl: 6\/6 requests PASS/,
      };
      expect(await page.textContent('#summary')).toMatch(summary[backend] as RegExp);
      expect(await page.$('#chart svg rect')).not.toBeNull();
      await page.screenshot({ path: join(shots, `playground-${backend.replace(':', '-')}.png`), fullPage: true });
      expect(errors).toEqual([]);
      await page.close();
    },
    180_000,
  );

  it('?backend=webgpu&run=1 selects the backend and starts without a click (requests=3 too)', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await page.goto(`${url}?backend=webgpu&requests=3&run=1`);
    await page.waitForFunction(
      () => ['done', 'error'].includes(document.querySelector('#status')?.getAttribute('data-state') ?? ''),
      null,
      {
        timeout: 120_000,
      },
    );
    expect(await page.textContent('#status'), errors.join('\n')).toBe('done: 3/3 PASS');
    expect(await page.$eval('#backend', (s) => (s as HTMLSelectElement).value)).toBe('webgpu');
    expect(await page.textContent('#summary')).toMatch(/^webgpu on tfjs webgpu: 3\/3 requests PASS/);
    expect(await page.$eval('#requests', (i) => (i as HTMLInputElement).value)).toBe('3');
    expect(errors).toEqual([]);
    await page.close();
  }, 180_000);
});
