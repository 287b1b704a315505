import { mkdir, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLocalFile, readLocalFile } from './files.js';

describe('local files', () => {
  let dir: string;
  const bytes = Uint8Array.from({ length: 1000 }, (_, i) => i % 251);
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lora-core-files-'));
    await writeFile(join(dir, 'data.bin'), bytes);
    await mkdir(join(dir, 'sub'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('openLocalFile reads at offsets, never past the size it opened with', async () => {
    const file = await openLocalFile(join(dir, 'data.bin'), { maxBytes: 4096 });
    try {
      expect(file?.size).toBe(1000);
      const into = new Uint8Array(10);
      await file?.read(into, 990);
      expect(Array.from(into)).toEqual(Array.from(bytes.subarray(990, 1000)));
      await expect(file?.read(new Uint8Array(11), 990)).rejects.toMatchObject({ code: 'E_CONFIG' });
      await expect(file?.read(into, -1)).rejects.toMatchObject({ code: 'E_CONFIG' });
    } finally {
      await file?.close();
    }
  });

  it('a file that shrinks while open: E_FORMAT from openLocalFile, what is left from readLocalFile', async () => {
    const path = join(dir, 'shrinks.bin');
    await writeFile(path, bytes);
    const file = await openLocalFile(path, { maxBytes: 4096 });
    try {
      await truncate(path, 500);
      await expect(file?.read(new Uint8Array(100), 450)).rejects.toMatchObject({
        code: 'E_FORMAT',
        message: expect.stringMatching(/ended at byte 500 while it was read \(it was 1000 bytes\)/),
      });
    } finally {
      await file?.close();
    }
    expect((await readLocalFile(path, { maxBytes: 4096 }))?.length).toBe(500);
  });

  it('refuses what is not a regular file of at most maxBytes; undefined when there is none', async () => {
    expect(await openLocalFile(join(dir, 'missing.bin'), { maxBytes: 10 })).toBeUndefined();
    expect(await readLocalFile(join(dir, 'missing', 'x.bin'), { maxBytes: 10 })).toBeUndefined();
    await expect(openLocalFile(join(dir, 'sub'), { maxBytes: 10, what: 'weights' })).rejects.toMatchObject({
      code: 'E_FORMAT',
      message: expect.stringMatching(/is a directory; expected the weights as a regular file/),
    });
    await expect(openLocalFile(join(dir, 'data.bin'), { maxBytes: 999 })).rejects.toMatchObject({
      code: 'E_FORMAT',
      message: expect.stringMatching(/is 1000 bytes; the file may be at most 999 bytes/),
    });
    expect(Array.from((await readLocalFile(join(dir, 'data.bin'), { maxBytes: 1000 })) ?? [])).toEqual(Array.from(bytes));
  });
});
