import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const src = dirname(fileURLToPath(import.meta.url));

/** Every module the app entry (index.ts) reaches through relative imports. */
function reachable(entry: string): Set<string> {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const m of readFileSync(file, 'utf8').matchAll(/^(?:import|export)[^;]*?from '(\.[^']+)'/gms)) {
      visit(resolve(dirname(file), (m[1] as string).replace(/\.js$/, '.ts')));
    }
  };
  visit(entry);
  return seen;
}

describe('the app is web-standard', () => {
  it('nothing @lora/server (index.ts) reaches imports Node modules, @hono/node-server or prom-client', () => {
    const files = reachable(join(src, 'index.ts'));
    expect(files.size).toBeGreaterThan(10);
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      expect(text, relative(src, file)).not.toMatch(/from '(node:|@hono\/node-server|prom-client)/);
      expect(text, relative(src, file)).not.toMatch(/\bprocess\.|\bBuffer\b/);
    }
    // The Node pieces live apart.
    expect([...files].some((f) => f.includes(`${join(src, 'node')}`))).toBe(false);
    expect(readdirSync(join(src, 'node')).length).toBeGreaterThan(0);
  });
});
