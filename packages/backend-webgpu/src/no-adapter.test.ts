import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

describe('without a WebGPU adapter', () => {
  it('createLoRA({ backend: "webgpu" }) fails with E_BACKEND saying what to install', () => {
    const here = dirname(fileURLToPath(import.meta.url));
    const script = `
      import { createLoRA } from '@lora/core';
      import './index.ts';
      try { await createLoRA({ backend: 'webgpu' }); console.log('no error'); }
      catch (e) { console.log(e.code + ' ' + e.message); }
      process.exit(0);
    `;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--conditions=@lora/source', '--input-type=module', '-e', script], {
      cwd: here,
      env: { ...process.env, VK_ICD_FILENAMES: join(here, 'no-such-icd.json') },
      encoding: 'utf8',
    });
    expect(r.stdout).toMatch(/^E_BACKEND \[E_BACKEND\] no WebGPU adapter: in Node install a Vulkan driver/m);
  }, 60_000);
});
