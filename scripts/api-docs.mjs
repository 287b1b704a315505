#!/usr/bin/env node
// API reference (issue #18): TypeDoc with the markdown plugin writes one page per entry of every
// published package (each `packages/*` not marked private) into docs/api (config: typedoc.json at
// the root, one typedoc.json per package naming its entries). `node scripts/api-docs.mjs` (`npm run docs`) rewrites docs/api;
// `--check` (run by `npm test`) builds it into a scratch folder with warnings as errors — every
// export documented, no broken {@link}, no type referenced but left out — and fails when the
// committed pages differ from what the sources say.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const committed = join(root, 'docs', 'api');
const check = process.argv.includes('--check');
const out = check ? mkdtempSync(join(tmpdir(), 'lora-api-docs-')) : committed;
// typedoc's exports map hides its bin: the root devDependency's link is where pnpm puts it.
const typedoc = join(root, 'node_modules', 'typedoc', 'bin', 'typedoc');

const publicPackages = readdirSync(join(root, 'packages'))
  .filter((name) => !JSON.parse(readFileSync(join(root, 'packages', name, 'package.json'), 'utf8')).private)
  .map((name) => `packages/${name}`);

const files = (dir) =>
  readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();

try {
  if (!check) rmSync(committed, { recursive: true, force: true });
  try {
    execFileSync(
      process.execPath,
      [typedoc, ...publicPackages.flatMap((p) => ['--entryPoints', p]), '--out', out, '--treatWarningsAsErrors', '--logLevel', 'Warn'],
      {
        cwd: root,
        stdio: ['ignore', 'inherit', 'inherit'],
      },
    );
  } catch {
    console.error('api docs: TypeDoc reported the problems above (every export needs a doc comment; links must resolve)');
    process.exit(1);
  }
  if (check) {
    const want = files(out);
    const have = files(committed);
    const stale = [
      ...want.filter((f) => !have.includes(f) || readFileSync(join(out, f), 'utf8') !== readFileSync(join(committed, f), 'utf8')),
      ...have.filter((f) => !want.includes(f)),
    ];
    if (stale.length > 0) {
      console.error(`api docs: docs/api is out of date (${stale.join(', ')}); run \`npm run docs\` and commit docs/api`);
      process.exit(1);
    }
    console.log(`api docs: docs/api is current (${want.length} pages)`);
  } else {
    console.log(`api docs: wrote ${files(out).length} pages to docs/api`);
  }
} finally {
  if (check) rmSync(out, { recursive: true, force: true });
}
