/**
 * Node's fs and path, imported only when a Node-only helper runs. The computed specifier keeps
 * bundlers from pulling them into browser builds, so the package stays importable everywhere.
 */
export async function nodeFs(): Promise<{ fs: typeof import('node:fs/promises'); path: typeof import('node:path') }> {
  const builtin = (name: string): Promise<unknown> => import(/* @vite-ignore */ `node:${name}`);
  const [fs, path] = (await Promise.all([builtin('fs/promises'), builtin('path')])) as [
    typeof import('node:fs/promises'),
    typeof import('node:path'),
  ];
  return { fs, path };
}
