/**
 * Node built-ins, loaded only when a Node-only helper runs. Computed specifiers keep bundlers from
 * pulling them into browser builds, so the packages that use this (core's file helpers and backend
 * import, @lora/llama's file sources and Hub cache) stay importable everywhere.
 */

/** True in Node.js (where the built-ins below exist), false in browsers and workers. */
export const isNode = (): boolean => typeof process !== 'undefined' && typeof process.versions?.node === 'string';

/** The Node built-ins {@link nodeBuiltins} loads, by the name it returns them under. */
export interface NodeBuiltins {
  /** `node:fs/promises`. */
  fs: typeof import('node:fs/promises');
  /** `node:path`. */
  path: typeof import('node:path');
  /** `node:os`. */
  os: typeof import('node:os');
  /** `node:module`. */
  module: typeof import('node:module');
  /** `node:url`. */
  url: typeof import('node:url');
}

const SPECIFIERS: Readonly<Record<keyof NodeBuiltins, string>> = {
  fs: 'node:fs/promises',
  path: 'node:path',
  os: 'node:os',
  module: 'node:module',
  url: 'node:url',
};

/** Imports the named Node built-ins (in parallel); call it only where {@link isNode} holds. */
export async function nodeBuiltins<K extends keyof NodeBuiltins>(...names: K[]): Promise<Pick<NodeBuiltins, K>> {
  const loaded = await Promise.all(names.map((n) => importOptional(SPECIFIERS[n])));
  return Object.fromEntries(names.map((n, i) => [n, loaded[i]])) as Pick<NodeBuiltins, K>;
}

/**
 * Imports a module by a computed specifier, which bundlers leave alone (and Vite is told to). A
 * bare specifier resolves from core's own folder: packages importing their optional peers (the
 * cpu backend's tfjs-backend-wasm, webgpu's Dawn) keep their own `import()` for that reason.
 */
export const importOptional = (specifier: string): Promise<unknown> => import(/* @vite-ignore */ specifier);
