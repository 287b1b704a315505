import { describe, expect, it } from 'vitest';
import * as backendEntry from './backend-api.js';
import * as userEntry from './index.js';

describe('package entries', () => {
  it('keeps the backend-author API out of the user entry (@lora/core) and in @lora/core/backend', () => {
    const authorOnly = [
      'defineLoRABackend',
      'shrinkKernelArgs',
      'expandKernelArgs',
      'runShrinkKernel',
      'MappingUploads',
      'registerLoRABackend',
      'checkBackendOptions',
      'computeMapping',
      'tokenBuckets',
    ];
    for (const name of authorOnly) {
      expect(Object.keys(userEntry), name).not.toContain(name);
      expect(Object.keys(backendEntry), name).toContain(name);
    }
    // Both entries hand out the same error class (one module, whichever entry imported it).
    expect(backendEntry.LoRAError).toBe(userEntry.LoRAError);
    expect(Object.keys(userEntry)).toEqual(
      expect.arrayContaining(['createLoRA', 'loadPeftAdapter', 'LoRALinear', 'LoRAError', 'reference']),
    );
  });
});
