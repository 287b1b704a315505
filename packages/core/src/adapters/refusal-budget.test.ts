import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoRAError } from '../errors.js';
import { serializeSafetensors } from '../formats/safetensors.js';
import { loadPeftAdapter, loadPeftAdapterFromDir } from './peft.js';

/**
 * README "Errors": a 200-byte adapter cannot take more than 100 ms or 10 MB to refuse. Each case
 * is a classic of its kind — a catastrophic-backtracking pattern run against a name made to
 * trigger it, a header that lies about sizes, a path that is not a file — sized to ~200 bytes.
 * Time is wall-clock of the refusing call (after one warm-up call, so module loading and JIT are
 * not counted); memory is the growth of heap and ArrayBuffers across the call.
 */

const TIME_BUDGET_MS = 100;
const MEMORY_BUDGET = 10 * 1024 * 1024;

function usage(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

async function refusesWithinBudget(label: string, bytes: number, refuse: () => unknown): Promise<void> {
  expect(bytes, `${label}: the case must stay a small input`).toBeLessThanOrEqual(260);
  await (async () => refuse())().catch(() => undefined); // warm-up
  const before = usage();
  const t0 = performance.now();
  let error: unknown;
  try {
    await refuse();
  } catch (err) {
    error = err;
  }
  const ms = performance.now() - t0;
  const grew = usage() - before;
  expect(error, `${label}: must be refused with a LoRAError`).toBeInstanceOf(LoRAError);
  expect(ms, `${label}: took ${ms.toFixed(1)} ms`).toBeLessThanOrEqual(TIME_BUDGET_MS);
  expect(grew, `${label}: grew memory by ${grew} bytes`).toBeLessThanOrEqual(MEMORY_BUDGET);
}

/** adapter_model.safetensors with one linear module whose name is chosen by the case. */
function weights(module: string): Uint8Array {
  return serializeSafetensors({
    [`${module}.lora_A.weight`]: { shape: [1, 1], data: Float32Array.of(1) },
    [`${module}.lora_B.weight`]: { shape: [1, 1], data: Float32Array.of(1) },
  });
}

describe('a 200-byte adapter is refused within 100 ms and 10 MB', () => {
  // 'aaaa…ab': for (a|a)*c a backtracking engine tries 2^n ways to split the a's before failing.
  const victim = `${'a'.repeat(28)}b`;

  it('target_modules with catastrophic backtracking (regex case)', async () => {
    const config = JSON.stringify({ r: 1, target_modules: '(a|a)*(a|aa)*c' });
    const st = weights(victim);
    await refusesWithinBudget('target_modules', config.length + st.length, () => loadPeftAdapter({ id: 'redos', config, safetensors: st }));
  });

  it('a rank_pattern key with nested quantifiers (regex case)', async () => {
    const config = JSON.stringify({ r: 1, rank_pattern: { '(a+)+c': 2 } });
    // The key matches nothing, so r = 1 applies and the rank-2 weights are refused after matching.
    const st = serializeSafetensors({
      [`${victim}.lora_A.weight`]: { shape: [2, 1], data: Float32Array.of(1, 1) },
      [`${victim}.lora_B.weight`]: { shape: [1, 2], data: Float32Array.of(1, 1) },
    });
    await refusesWithinBudget('rank_pattern', config.length + st.length, () => loadPeftAdapter({ id: 'redos', config, safetensors: st }));
  });

  it('headers that lie: a 2^60 header length, a 10^18-element shape, offsets past the end (header case)', async () => {
    const lyingLength = new Uint8Array(200);
    new DataView(lyingLength.buffer).setBigUint64(0, 2n ** 60n, true);
    const header = (text: string) => {
      const h = new TextEncoder().encode(text);
      const out = new Uint8Array(8 + h.length + 4);
      new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
      out.set(h, 8);
      return out;
    };
    const hugeShape = header('{"x.lora_A.weight":{"dtype":"F32","shape":[1000000,1000000,1000000],"data_offsets":[0,4]}}');
    const pastEnd = header('{"x.lora_A.weight":{"dtype":"F32","shape":[1073741824],"data_offsets":[0,4294967296]}}');
    for (const [label, bytes] of [
      ['header length 2^60', lyingLength],
      ['10^18 elements', hugeShape],
      ['offsets past the end', pastEnd],
    ] as const) {
      await refusesWithinBudget(label, bytes.length, () => loadPeftAdapter({ id: 'liar', config: { r: 1 }, safetensors: bytes }));
    }
  });

  describe('paths that are not what they claim (file-type case)', () => {
    let root: string;
    beforeAll(async () => {
      root = await mkdtemp(join(tmpdir(), 'refusal-'));
    });
    afterAll(async () => {
      await rm(root, { recursive: true, force: true });
    });

    it('a FIFO where adapter_model.safetensors should be (a plain read would block forever)', async () => {
      const dir = join(root, 'fifo');
      await mkdir(dir);
      await writeFile(join(dir, 'adapter_config.json'), '{"r":1}');
      execFileSync('mkfifo', [join(dir, 'adapter_model.safetensors')]);
      await refusesWithinBudget('FIFO', 7, () => loadPeftAdapterFromDir(dir));
    });

    it('a device file (/dev/zero: endless) where adapter_config.json should be', async () => {
      const dir = join(root, 'device');
      await mkdir(dir);
      execFileSync('ln', ['-s', '/dev/zero', join(dir, 'adapter_config.json')]);
      await refusesWithinBudget('/dev/zero', 0, () => loadPeftAdapterFromDir(dir));
    });
  });
});
