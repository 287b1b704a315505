import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Published packages by name (what a changeset may bump). */
function publicPackages(): Set<string> {
  const names = new Set<string>();
  for (const dir of readdirSync(join(root, 'packages'))) {
    try {
      const pkg = JSON.parse(readFileSync(join(root, 'packages', dir, 'package.json'), 'utf8'));
      if (pkg.private !== true) names.add(pkg.name);
    } catch {
      // not a package folder
    }
  }
  return names;
}

describe('changesets', () => {
  it('every .changeset/*.md has the front matter `changeset version` parses: published packages and a bump each', () => {
    const published = publicPackages();
    const problems: string[] = [];
    const files = readdirSync(join(root, '.changeset')).filter((f) => f.endsWith('.md') && f !== 'README.md');
    for (const file of files) {
      const text = readFileSync(join(root, '.changeset', file), 'utf8');
      // A markdown formatter once turned `"pkg": minor` + `---` into a `## "pkg": minor` heading.
      const front = /^---\n((?:"[^"\n]+": (?:major|minor|patch)\n)+)---\n\n\S/.exec(text);
      if (!front) {
        problems.push(`${file}: expected ---, one "package": major|minor|patch line each, ---, a blank line, the summary`);
        continue;
      }
      for (const line of (front[1] as string).trim().split('\n')) {
        const name = (/^"([^"]+)"/.exec(line) as RegExpExecArray)[1] as string;
        if (!published.has(name)) problems.push(`${file}: ${name} is not a published package of this repository`);
      }
    }
    expect(files.length).toBeGreaterThan(0);
    expect(problems).toEqual([]);
  });
});
