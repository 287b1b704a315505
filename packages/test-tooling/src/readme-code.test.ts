import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { type CodeBlock, extractBlocks, moduleSource, readmeFiles } from './readme-code.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..', '..');
// Inside this package, so that its node_modules (every @lora package, tfjs, openai) resolve.
const work = join(here, '..', '.readme-check');

describe('extractBlocks', () => {
  it('takes ts blocks with the check comment right above them, and nothing else', () => {
    const md = [
      'text',
      '<!-- check: declare const x: number; -->',
      '```ts',
      'x + 1;',
      '```',
      '```sh',
      'npm test',
      '```',
      '<!-- check: skip (pseudo-code) -->',
      '```ts',
      'nope(',
      '```',
      '<!-- check: declare const y: string; -->',
      'a paragraph in between cancels the comment',
      '```ts',
      'y;',
      '```',
    ].join('\n');
    const blocks = extractBlocks(md, 'R.md');
    expect(blocks.map((b) => [b.line, b.code, b.context, b.skip])).toEqual([
      [4, 'x + 1;', 'declare const x: number;', undefined],
      [11, 'nope(', '', '(pseudo-code)'],
      [16, 'y;', '', undefined],
    ]);
  });
});

describe('README code blocks', () => {
  it('typecheck with tsc --strict (each block a module, with the context its comment declares)', () => {
    const blocks: CodeBlock[] = readmeFiles(root).flatMap((f) => extractBlocks(readFileSync(join(root, f), 'utf8'), f));
    const checked = blocks.filter((b) => b.skip === undefined);
    expect(checked.length).toBeGreaterThan(15);
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work, { recursive: true });
    const where = new Map<string, { block: CodeBlock; contextLines: number }>();
    checked.forEach((block, i) => {
      const name = `block-${i}.ts`;
      const { text, contextLines } = moduleSource(block);
      writeFileSync(join(work, name), text);
      where.set(name, { block, contextLines });
    });
    // ESM with top-level await, as the README tells users to set up.
    writeFileSync(join(work, 'package.json'), JSON.stringify({ type: 'module' }));
    writeFileSync(
      join(work, 'tsconfig.json'),
      JSON.stringify({ extends: '../../../tsconfig.base.json', compilerOptions: { strict: true, noEmit: true }, include: ['*.ts'] }),
    );
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    let output = '';
    try {
      execFileSync(process.execPath, [tsc, '-p', work, '--pretty', 'false'], { encoding: 'utf8', stdio: 'pipe' });
    } catch (err) {
      output = String((err as { stdout?: string }).stdout ?? err);
    }
    // Errors as README locations: "README.md:123: TS2304 Cannot find name 'x'."
    const errors = output
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => {
        const m = /^(?:.*[\\/])?(block-\d+\.ts)\((\d+),\d+\): error (TS\d+): (.*)$/.exec(l);
        const at = m ? where.get(m[1] as string) : undefined;
        if (!m || !at) return l;
        const line = Number(m[2]) - at.contextLines;
        return line < 1
          ? `${at.block.file}:${at.block.line - 1} (its check comment): ${m[3]} ${m[4]}`
          : `${at.block.file}:${at.block.line + line - 1}: ${m[3]} ${m[4]}`;
      });
    expect(errors).toEqual([]);
    rmSync(work, { recursive: true, force: true });
  }, 180_000);
});
