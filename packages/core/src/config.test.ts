import { describe, expect, it } from 'vitest';
import { checkBackendOptions, resolveConfig } from './config.js';

describe('resolveConfig', () => {
  it('fills the documented defaults', () => {
    const c = resolveConfig({ backend: 'cpu' });
    expect(c).toMatchObject({
      backend: 'cpu',
      maxLoras: 4,
      maxLoraRank: 16,
      maxCpuLoras: 8,
      maxNumTokens: 8192,
      maxSlotMemory: 2 * 1024 ** 3,
      backendOptions: {},
    });
    expect(Object.isFrozen(c)).toBe(true);
    expect(resolveConfig({ backend: 'cpu', maxLoras: 3 }).maxCpuLoras).toBe(6);
  });

  it('accepts a config read from JSON', () => {
    const c = resolveConfig(JSON.parse('{"backend":"webgpu","maxLoras":8,"maxLoraRank":64,"backendOptions":{"x":1}}'));
    expect(c.maxLoraRank).toBe(64);
    expect(c.backendOptions).toEqual({ x: 1 });
  });

  it.each([
    [null, /expected a LoRAConfig object, got null/],
    [{}, /backend must be a backend name/],
    [{ backend: 4 }, /got 4/],
    [{ backend: 'cpu', maxLoras: -1 }, /maxLoras must be an integer from 1 to 1024, got -1/],
    [{ backend: 'cpu', maxNumTokens: '8' }, /maxNumTokens must be an integer from 1 to 1048576, got "8"/],
    [{ backend: 'cpu', backendOptions: [] }, /backendOptions must be an object/],
    [{ backend: 'cpu', maxloras: 2 }, /unknown LoRAConfig key\(s\) "maxloras"/],
    [{ backend: 'cpu', maxLoras: 1e9 }, /maxLoras must be an integer from 1 to 1024, got 1000000000/],
    [{ backend: 'cpu', maxLoraRank: 1e9 }, /maxLoraRank must be an integer from 1 to 1024/],
    [{ backend: 'cpu', maxSlotMemory: 0 }, /maxSlotMemory must be an integer/],
  ])('rejects %j with E_CONFIG', (config, message) => {
    expect(() => resolveConfig(config as never)).toThrow(message);
    expect(() => resolveConfig(config as never)).toThrow(/E_CONFIG/);
  });

  it('turns a throwing getter into E_CONFIG', () => {
    const config = {
      backend: 'cpu',
      get maxLoras(): number {
        throw new Error('boom');
      },
    };
    expect(() => resolveConfig(config)).toThrow(/E_CONFIG.*the LoRAConfig could not be read: "boom"/);
  });

  it('checkBackendOptions names unknown keys', () => {
    expect(() => checkBackendOptions('cpu', { engin: 'wasm' }, ['engine'])).toThrow(
      /unknown backendOptions key\(s\) engin for backend "cpu"; expected only engine/,
    );
    expect(() => checkBackendOptions('cpu', {}, [])).not.toThrow();
  });
});
