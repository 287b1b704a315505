import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { post } from './test-support.js';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
});

/** `lora-serve` from source, as `npm run serve` runs it (tsx with the @lora/source condition). */
function cli(args: string[]) {
  const child = spawn(process.execPath, ['--conditions=@lora/source', '--import', 'tsx', 'src/cli.ts', ...args], {
    cwd: pkg,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stderr = '';
  let stdout = '';
  child.stderr?.on('data', (d) => {
    stderr += d;
  });
  child.stdout?.on('data', (d) => {
    stdout += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const line = (re: RegExp, ms = 30_000) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no line matching ${re} within ${ms} ms; stderr: ${stderr}`)), ms);
      const check = () => {
        const m = re.exec(stderr);
        if (m) {
          clearTimeout(timer);
          child.stderr?.off('data', check);
          resolve(m);
        }
      };
      child.stderr?.on('data', check);
      check();
    });
  return { child, exited, line, out: () => ({ stderr, stdout }) };
}

describe('lora-serve CLI', () => {
  it('--help prints the flags and exits 0', async () => {
    const c = cli(['--help']);
    expect(await c.exited).toBe(0);
    const { stdout } = c.out();
    for (const flag of [
      '--model',
      '--adapters',
      '--max-loras',
      '--max-lora-rank',
      '--max-cpu-loras',
      '--max-num-seqs',
      '--max-queue',
      '--api-key',
      '--allow-runtime-lora',
      '--lora-root',
      '--host',
      '--port',
    ]) {
      expect(stdout).toContain(flag);
    }
  }, 30_000);

  // The flag parser's own cases are in cli/args.test.ts; these check what the process does with a refusal.
  it.each([
    [['--max-loras', 'zero'], /--max-loras must be an integer/],
    [['--model', '/nonexistent/model', '--port', '0'], /is neither a local directory nor a Hugging Face Hub repository id/],
    // The budget reaches core's createLoRA: the first LoRA layer that does not fit names it.
    [['--preset', 'tiny', '--max-slot-memory', '1000', '--port', '0'], /needs \d+ bytes of adapter slots.*passes maxSlotMemory = 1000/],
  ])(
    'bad flags %j: one line on stderr, exit 2, no stack trace',
    async (args, message) => {
      const c = cli(args);
      expect(await c.exited).toBe(2);
      const { stderr } = c.out();
      expect(stderr).toMatch(message);
      expect(stderr).not.toMatch(/\n\s+at /);
      expect(
        stderr
          .trim()
          .split('\n')
          .filter((l) => !/^lora-serve: (loading|building)/.test(l)),
      ).toHaveLength(1);
    },
    30_000,
  );

  it('SIGTERM drains: new requests get 503, the stream in flight completes, then exit 0', async () => {
    const c = cli(['--preset', 'tiny', '--port', '0', '--drain-timeout', '20']);
    const url = (await c.line(/listening on (http:\/\/[\d.:]+)/))[1] as string;
    expect((await fetch(`${url}/health`)).status).toBe(200);
    const res = await fetch(`${url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'sql-r8', prompt: [1, 2, 3], max_tokens: 300, ignore_eos: true, stream: true }),
    });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    let text = new TextDecoder().decode((await reader.read()).value);
    c.child.kill('SIGTERM');
    await c.line(/SIGTERM: draining/);
    const refused = await post(`${url}/v1/completions`, { model: 'sql-r8', prompt: [1, 2, 3], max_tokens: 2 });
    expect(refused.status).toBe(503);
    expect(refused.json.error.code).toBe('unavailable');
    expect((await fetch(`${url}/health`)).status).toBe(503);
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
    expect(text).toContain('"finish_reason":"length"');
    expect(await c.exited).toBe(0);
    expect(c.out().stderr).toMatch(/stopped/);
  }, 60_000);
});
