import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * The TypeScript blocks of the repository's READMEs, so that a test can typecheck them: what a
 * reader copies must compile. A block may be preceded by an HTML comment (invisible when rendered):
 *   <!-- check: declare const x: tf.Tensor2D; -->   declarations (and imports) the block assumes
 *   <!-- check: skip (why) -->                        not checked, with the reason
 */
export interface CodeBlock {
  /** README path relative to the repository root, and the line of the block's first code line. */
  readonly file: string;
  readonly line: number;
  readonly code: string;
  /** Declarations prepended to the block: what the surrounding prose says exists. */
  readonly context: string;
  readonly skip: string | undefined;
}

const CHECK = /^<!--\s*check:\s*([\s\S]*?)\s*-->$/;

export function extractBlocks(markdown: string, file: string): CodeBlock[] {
  const lines = markdown.split('\n');
  const blocks: CodeBlock[] = [];
  let pending: string | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    const comment = CHECK.exec(line.trim());
    if (comment) {
      pending = comment[1];
      continue;
    }
    if (line.trim() === '```ts' || line.trim() === '```typescript') {
      const start = i + 1;
      let end = start;
      while (end < lines.length && (lines[end] as string).trim() !== '```') end++;
      const note = pending ?? '';
      const skip = /^skip\b/.test(note) ? note.replace(/^skip\s*/, '') || 'no reason given' : undefined;
      blocks.push({ file, line: start + 1, code: lines.slice(start, end).join('\n'), context: skip ? '' : note, skip });
      i = end;
    }
    if (line.trim() !== '') pending = undefined;
  }
  return blocks;
}

/** README.md at the root and in every package and app. */
export function readmeFiles(root: string): string[] {
  const files = [join(root, 'README.md')];
  for (const dir of ['packages', 'apps']) {
    for (const name of readdirSync(join(root, dir)).sort()) {
      try {
        readFileSync(join(root, dir, name, 'README.md'));
        files.push(join(root, dir, name, 'README.md'));
      } catch {
        // No README in this folder.
      }
    }
  }
  return files.map((f) => relative(root, f));
}

/** The module written for a block: its context first (imports hoist), then the block unchanged. */
export function moduleSource(block: CodeBlock): { text: string; contextLines: number } {
  const context = block.context === '' ? '' : `${block.context}\n`;
  // `export {}` keeps a block without imports a module (top-level await, its own scope).
  const text = `${context}${block.code}\nexport {};\n`;
  return { text, contextLines: context === '' ? 0 : context.split('\n').length - 1 };
}
