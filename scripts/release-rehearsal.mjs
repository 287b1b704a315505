#!/usr/bin/env node
// Release rehearsal (issue #18): what `npm run release` would publish, published to a local
// registry, then installed in an empty folder with the README's own install line and used the
// way the README shows — as ESM, as CJS, and from strict TypeScript (node16 and bundler module
// resolution). Nothing leaves this machine: Verdaccio (6.8.0, with node-fetch 2.7.0 so that it
// runs on Node 20) holds our packages and proxies everything else from the npm registry.
//
// Steps: a clone of HEAD → `changeset version` (the versions and changelogs a release would
// write) → build → Verdaccio on a free port → `pnpm publish` of every public package → an empty
// project → the README's `npm install` line → the examples. Run with `npm run rehearse`
// (about 3 minutes); LORA_REHEARSAL_KEEP=1 keeps the scratch folder.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const PNPM = 'pnpm@10.34.9';
const scratch = mkdtempSync(join(tmpdir(), 'lora-rehearsal-'));
const t0 = Date.now();
let step = 0;
const say = (text) => console.log(`[${++step}] ${text} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
const run = (cmd, args, cwd, env = {}) =>
  execFileSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', env: { ...process.env, ...env } });

/** The README's install line: the first `npm install @lora/…` in its "Use" section. */
function readmeInstallLine() {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const line = readme.split('\n').find((l) => /^npm install @lora\/core /.test(l.trim()));
  if (!line) throw new Error('README.md has no `npm install @lora/core …` line');
  return line.trim().split(/\s+/).slice(2);
}

const freePort = () =>
  new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

async function waitFor(url, ms) {
  const end = Date.now() + ms;
  for (;;) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > end) throw new Error(`${url} did not answer within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

let registry;
try {
  say(`clone of HEAD into ${scratch}`);
  const repo = join(scratch, 'repo');
  run('git', ['clone', '--quiet', root, repo], root);
  run('npx', ['-y', PNPM, 'install', '--frozen-lockfile', '--prefer-offline', '--silent'], repo);

  say('changeset version (the versions and changelogs a release writes), then build');
  run('npx', ['-y', PNPM, 'exec', 'changeset', 'version'], repo);
  run('npx', ['-y', PNPM, 'install', '--no-frozen-lockfile', '--prefer-offline', '--silent'], repo);
  // pnpm -r runs the packages' builds in dependency order (turbo cannot find pnpm under npx).
  run('npx', ['-y', PNPM, '-r', '--filter', './packages/*', 'run', 'build'], repo);
  const packages = readdirSync(join(repo, 'packages'))
    .map((d) => join(repo, 'packages', d))
    .filter((d) => existsSync(join(d, 'package.json')))
    .map((dir) => ({ dir, pkg: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) }))
    .filter(({ pkg }) => pkg.private !== true);

  say('Verdaccio 6.8.0 (installed into the scratch folder)');
  const vd = join(scratch, 'verdaccio');
  mkdirSync(vd);
  writeFileSync(join(vd, 'package.json'), JSON.stringify({ private: true, overrides: { 'node-fetch': '2.7.0' } }));
  run('npm', ['install', 'verdaccio@6.8.0', '--no-audit', '--no-fund', '--loglevel=error'], vd);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/`;
  writeFileSync(
    join(vd, 'config.yaml'),
    [
      `storage: ${join(vd, 'storage')}`,
      'auth:',
      '  htpasswd:',
      `    file: ${join(vd, 'htpasswd')}`,
      'uplinks:',
      '  npmjs:',
      '    url: https://registry.npmjs.org/',
      'packages:',
      "  '@lora/*':",
      '    access: $all',
      '    publish: $authenticated',
      "  '**':",
      '    access: $all',
      '    proxy: npmjs',
      'log: { type: stdout, format: pretty, level: error }',
      '',
    ].join('\n'),
  );
  registry = spawn(
    process.execPath,
    [join(vd, 'node_modules', 'verdaccio', 'bin', 'verdaccio'), '--config', join(vd, 'config.yaml'), '--listen', `127.0.0.1:${port}`],
    {
      stdio: 'ignore',
    },
  );
  await waitFor(`${url}-/ping`, 30_000);
  // A user of the local registry, and its token for publishing.
  const res = await fetch(`${url}-/user/org.couchdb.user:rehearsal`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'rehearsal', password: 'rehearsal-password' }),
  });
  const { token } = await res.json();
  if (!token) throw new Error(`the local registry gave no token (${res.status})`);
  const npmrc = join(scratch, '.npmrc');
  writeFileSync(npmrc, `registry=${url}\n//127.0.0.1:${port}/:_authToken=${token}\n`);
  const registryEnv = { npm_config_userconfig: npmrc, npm_config_registry: url };

  say(`publish ${packages.map(({ pkg }) => `${pkg.name}@${pkg.version}`).join(', ')}`);
  for (const { dir } of packages) run('npx', ['-y', PNPM, 'publish', '--no-git-checks', '--registry', url], dir, registryEnv);

  say(`an empty project: npm install ${readmeInstallLine().join(' ')}`);
  const app = join(scratch, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  // typescript and types for the strict check below; @types/long because tfjs-core 4.22's own .d.ts
  // files name `Long` without depending on its types (skipLibCheck would hide errors in ours too).
  run('npm', ['install', ...readmeInstallLine(), '--no-audit', '--no-fund', '--loglevel=error'], app, registryEnv);
  run(
    'npm',
    ['install', '-D', 'typescript@5.9.3', '@types/node@20', '@types/long@4', '--no-audit', '--no-fund', '--loglevel=error'],
    app,
    registryEnv,
  );

  // The README's "Use" example, with the tensors its prose assumes made up, as ESM and as CJS.
  const body = (tf) => `
  const lora = await createLoRA({ backend: 'cpu', maxLoras: 4, maxLoraRank: 16 });
  lora.punica.updateMetadata({ tokenLoraIndices: [0, 0, 2, -1, 1] });
  const [T, H, O, L, R] = [5, 8, 6, 4, 2];
  const x = ${tf}.randomNormal([T, H]), w = ${tf}.randomNormal([O, H]);
  const loraA = ${tf}.randomNormal([L, R, H]), loraB = ${tf}.randomNormal([L, O, R]);
  const y = ${tf}.matMul(x, w, false, true);
  const out = lora.punica.addLoRALinear(y, x, [loraA], [loraB], 1, [O]);
  if (out.shape.join() !== [T, O].join()) throw new Error('unexpected shape ' + out.shape);
  const bad = await createLoRA({ backend: 'cpux' }).catch((e) => e);
  if (!isLoRAError(bad, 'E_BACKEND')) throw new Error('an unknown backend must be E_BACKEND');
  console.log('ok', lora.backend.name, out.shape.join('x'));`;
  writeFileSync(
    join(app, 'esm.mjs'),
    `import '@lora/backend-cpu';\nimport { createLoRA, isLoRAError } from '@lora/core';\nimport * as tf from '@tensorflow/tfjs-core';\n${body('tf')}\n`,
  );
  writeFileSync(
    join(app, 'cjs.cjs'),
    `require('@lora/backend-cpu');\nconst { createLoRA, isLoRAError } = require('@lora/core');\nconst tf = require('@tensorflow/tfjs-core');\n(async () => {${body('tf')}\n})().catch((e) => { console.error(e); process.exit(1); });\n`,
  );
  say('run the example as ESM and as CJS');
  for (const file of ['esm.mjs', 'cjs.cjs']) {
    const out = run(process.execPath, [file], app);
    if (!/^ok cpu 5x6$/m.test(out)) throw new Error(`${file} printed:\n${out}`);
  }

  say("typecheck the README's usage against the installed packages' types: tsc --strict, node16 and bundler resolution");
  writeFileSync(
    join(app, 'use.ts'),
    `import '@lora/backend-cpu';\nimport { createLoRA } from '@lora/core';\nimport { defineLoRABackend, registerLoRABackend } from '@lora/core/backend';\nimport * as tf from '@tensorflow/tfjs-core';\n\ndeclare const x: tf.Tensor2D, w: tf.Tensor2D, loraA: tf.Tensor3D, loraB: tf.Tensor3D, O: number;\nconst lora = await createLoRA({ backend: ['webgpu', 'cpu'], backendOptions: { cpu: { engine: 'wasm' } } });\nconst y = tf.matMul<tf.Tensor2D>(x, w, false, true);\nconst out: tf.Tensor2D = lora.punica.addLoRALinear(y, x, [loraA], [loraB], 1, [O]);\nregisterLoRABackend('mine', () => defineLoRABackend({ name: 'mine', tfBackend: 'cpu', kernels: [] }));\nexport { out };\n`,
  );
  for (const resolution of [
    { module: 'node16', moduleResolution: 'node16' },
    { module: 'esnext', moduleResolution: 'bundler' },
  ]) {
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { strict: true, noEmit: true, target: 'es2022', skipLibCheck: false, types: ['node', 'long'], ...resolution },
        files: ['use.ts'],
      }),
    );
    try {
      run(process.execPath, [join(app, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', app], app);
    } catch (err) {
      throw new Error(`tsc (${resolution.moduleResolution}) failed:\n${err.stdout ?? err}`);
    }
  }
  say(`rehearsal passed: ${packages.length} packages published, installed and used`);
} catch (err) {
  console.error(`release rehearsal FAILED at step ${step}: ${err.stderr || err.message || err}`);
  process.exitCode = 1;
} finally {
  registry?.kill();
  if (process.env.LORA_REHEARSAL_KEEP !== '1') rmSync(scratch, { recursive: true, force: true });
  else console.log(`kept ${scratch}`);
}
