import { describe, expect, it } from 'vitest';
import { isLoopback, parseArgs, UsageError } from './args.js';

describe('lora-serve flags', () => {
  it('defaults: 127.0.0.1:8000, no key, runtime LoRA off, the embedded model', () => {
    expect(parseArgs([])).toEqual({ help: false, host: '127.0.0.1', port: 8000, drainTimeout: 30 });
  });

  it('reads every flag, as --flag value and --flag=value', () => {
    const o = parseArgs([
      '--model',
      'HuggingFaceTB/SmolLM2-135M-Instruct',
      '--adapters=sql=adapters/sql,org/poet-lora',
      '--backend',
      'cpu',
      '--host=0.0.0.0',
      '--port',
      '0',
      '--max-loras',
      '8',
      '--max-lora-rank=64',
      '--max-cpu-loras',
      '16',
      '--lora-load-workers=0',
      '--max-num-seqs',
      '32',
      '--max-queue',
      '100',
      '--api-key',
      'k',
      '--allow-runtime-lora',
      '--lora-root',
      '/srv/loras',
      '--served-model-name',
      'smol',
    ]);
    expect(o).toMatchObject({
      model: 'HuggingFaceTB/SmolLM2-135M-Instruct',
      adapters: [
        { name: 'sql', path: 'adapters/sql' },
        { name: 'poet-lora', path: 'org/poet-lora' },
      ],
      backend: 'cpu',
      host: '0.0.0.0',
      port: 0,
      maxLoras: 8,
      maxLoraRank: 64,
      maxCpuLoras: 16,
      loraLoadWorkers: 0,
      maxNumSeqs: 32,
      maxQueue: 100,
      apiKey: 'k',
      allowRuntimeLora: true,
      loraRoot: '/srv/loras',
      servedModelName: 'smol',
    });
  });

  it("--max-slot-memory sets the slot budget in bytes (core's maxSlotMemory)", () => {
    expect(parseArgs(['--max-slot-memory', '8589934592']).maxSlotMemory).toBe(8589934592);
    expect(() => parseArgs(['--max-slot-memory', '0'])).toThrow(/--max-slot-memory/);
  });

  it('--lora-load-workers takes 0 to 64 threads', () => {
    expect(parseArgs(['--lora-load-workers', '2']).loraLoadWorkers).toBe(2);
    expect(() => parseArgs(['--lora-load-workers', '-1'])).toThrow(UsageError);
    expect(() => parseArgs(['--lora-load-workers', '65'])).toThrow(/--lora-load-workers/);
  });

  it('takes the API key from LORA_API_KEY when the flag is not given', () => {
    expect(parseArgs([], { LORA_API_KEY: 'secret' }).apiKey).toBe('secret');
    expect(parseArgs(['--api-key', 'flag'], { LORA_API_KEY: 'env' }).apiKey).toBe('flag');
  });

  it.each([
    [['--bogus'], /unknown option "--bogus"/],
    [['--max-loras', 'zero'], /--max-loras must be an integer from 1/],
    [['--max-loras', '0'], /--max-loras must be an integer from 1/],
    [['--max-queue', '-3'], /--max-queue/],
    [['--port', '70000'], /--port must be an integer from 0 to 65535/],
    [['--port'], /--port needs a value/],
    [['--model', '--port', '1'], /--model needs a value/],
    [['--allow-runtime-lora=yes'], /takes no value/],
    [['--lora-root', '/tmp'], /--lora-root needs --allow-runtime-lora/],
    [['--model', 'x', '--preset', 'tiny'], /--preset is for the embedded model/],
    [['--adapters', 'a=x,a=y'], /given twice/],
    [['--adapters', '=x'], /expected NAME=DIR/],
    [['--api-key', ''], /non-empty/],
  ])('refuses %j with a UsageError naming the flag', (args, message) => {
    expect(() => parseArgs(args)).toThrow(UsageError);
    expect(() => parseArgs(args)).toThrow(message);
  });

  it('knows loopback hosts (no API-key warning there)', () => {
    expect(['127.0.0.1', '127.1.2.3', 'localhost', '::1'].every(isLoopback)).toBe(true);
    expect(['0.0.0.0', '::', '192.168.1.5', 'example.com'].some(isLoopback)).toBe(false);
  });
});
