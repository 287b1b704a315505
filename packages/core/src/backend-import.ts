/**
 * How `createLoRA({ backend: 'x' })` loads `@lora/backend-x` when nothing registered it yet.
 *
 * A plain `import()` resolves from core's own folder, which under pnpm's strict layout (or a
 * workspace) cannot see the app's other dependencies. Node tools that load plugins (eslint,
 * prettier) resolve them from the project instead; so do we: on a miss, the package is looked up
 * from the current working directory and its ESM entry is imported. In a browser bundle the app
 * imports its backend package itself (a bundler cannot follow a computed specifier).
 */

import { importOptional, isNode, nodeBuiltins } from './node.js';

/**
 * Imports a backend package by its specifier (`@lora/backend-webgpu`); see {@link setBackendImporter}.
 * What it resolves to is ignored: importing the package is what registers its backend. A rejection
 * becomes an E_BACKEND error of `createLoRA` ("not installed" when the module was not found).
 */
export type BackendImporter = (specifier: string) => Promise<unknown>;

/**
 * The package itself was not found. Only a message that quotes the specifier counts: a package that
 * is installed but whose entry file is missing (an unbuilt workspace package) fails with the same
 * code and a file path instead, and must not be reported as "not installed".
 */
export function isModuleNotFound(err: unknown, specifier: string): boolean {
  const e = err as { code?: string; message?: string } | null;
  const message = e?.message ?? '';
  const quoted = message.includes(`'${specifier}'`) || message.includes(`"${specifier}"`);
  if (e?.code === 'ERR_MODULE_NOT_FOUND' || e?.code === 'MODULE_NOT_FOUND') return quoted;
  return quoted && /cannot find|failed to (resolve|load)|not found|does not provide/i.test(message);
}

/** A module the package's entry points to is missing (its code is there only once it is built). */
export function isEntryMissing(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
}

/**
 * The ESM entry of a package.json: `exports["."]` under one of the process's custom `conditions`
 * first (a development run started with `--conditions=@lora/source` loads sources, as its static
 * imports do), then `import`, then `module`, then `main`.
 */
export function esmEntry(pkg: Record<string, unknown>, conditions: readonly string[] = []): string | undefined {
  const exp = pkg.exports as Record<string, unknown> | string | undefined;
  const dot = typeof exp === 'string' ? exp : (exp?.['.'] as Record<string, unknown> | string | undefined);
  if (typeof dot === 'string') return dot;
  for (const c of conditions) if (typeof dot?.[c] === 'string') return dot[c] as string;
  const imp = dot?.import as Record<string, unknown> | string | undefined;
  if (typeof imp === 'string') return imp;
  if (typeof imp?.default === 'string') return imp.default;
  if (typeof dot?.default === 'string') return dot.default;
  if (typeof pkg.module === 'string') return pkg.module;
  return typeof pkg.main === 'string' ? pkg.main : undefined;
}

/** `file://` URL of the package's ESM entry as the project in `cwd` sees it, or undefined. */
export async function resolveFromProject(specifier: string, cwd: string = process.cwd()): Promise<string | undefined> {
  const { module, url, fs, path } = await nodeBuiltins('module', 'url', 'fs', 'path');
  const { createRequire } = module;
  const { pathToFileURL } = url;
  const { access, readFile } = fs;
  const { dirname, join } = path;
  // Walk the node_modules folders the project would search; reading package.json directly also
  // works for packages whose exports map does not expose "./package.json".
  const folders: string[] = createRequire(join(cwd, 'noop.js')).resolve.paths(specifier) ?? [];
  let manifest: string | undefined;
  for (const folder of folders) {
    const candidate = join(folder, specifier, 'package.json');
    if (
      await access(candidate).then(
        () => true,
        () => false,
      )
    ) {
      manifest = candidate;
      break;
    }
  }
  if (manifest === undefined) return undefined;
  const entry = esmEntry(JSON.parse(await readFile(manifest, 'utf8')), customConditions());
  return entry === undefined ? undefined : pathToFileURL(join(dirname(manifest), entry)).href;
}

export const defaultBackendImporter: BackendImporter = async (specifier) => {
  try {
    return await importOptional(specifier);
  } catch (err) {
    if (!isNode() || !isModuleNotFound(err, specifier)) throw err;
    const url = await resolveFromProject(specifier);
    if (url === undefined) throw err;
    return importOptional(url);
  }
};

/** The `--conditions` / `-C` this Node process runs with (its arguments and NODE_OPTIONS). */
export function customConditions(argv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): string[] {
  const args = [...argv, ...nodeOptions.split(/\s+/).filter(Boolean)];
  const out: string[] = [];
  args.forEach((arg, i) => {
    const inline = /^(?:--conditions|-C)=(.+)$/.exec(arg);
    if (inline) out.push(inline[1] as string);
    else if ((arg === '--conditions' || arg === '-C') && args[i + 1] !== undefined) out.push(args[i + 1] as string);
  });
  return out;
}
