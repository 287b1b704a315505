/**
 * Node built-ins, loaded only when a Node-only helper runs. Computed specifiers keep bundlers from
 * pulling them into browser builds, so core stays importable everywhere.
 */

export const isNode = (): boolean => typeof process !== 'undefined' && typeof process.versions?.node === 'string';

const builtin = (name: string): Promise<unknown> => import(/* @vite-ignore */ `node:${name}`);

export async function nodeFs(): Promise<{ fs: typeof import('node:fs/promises'); path: typeof import('node:path') }> {
  const [fs, path] = (await Promise.all([builtin('fs/promises'), builtin('path')])) as [
    typeof import('node:fs/promises'),
    typeof import('node:path'),
  ];
  return { fs, path };
}

export async function nodeModules(): Promise<{ module: typeof import('node:module'); url: typeof import('node:url') }> {
  const [module, url] = (await Promise.all([builtin('module'), builtin('url')])) as [
    typeof import('node:module'),
    typeof import('node:url'),
  ];
  return { module, url };
}
