import { createLoRA, LoRAError } from '@lora/core';
import { describe, expect, it } from 'vitest';
import './index.js';

describe('webgl outside a browser', () => {
  it('gives E_BACKEND saying WebGL needs a browser', async () => {
    await expect(createLoRA({ backend: 'webgl' })).rejects.toSatisfy(
      (e: unknown) => e instanceof LoRAError && e.code === 'E_BACKEND' && /WebGL needs a browser/.test(e.message),
    );
  });
});
