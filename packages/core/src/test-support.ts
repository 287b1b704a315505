// Test helpers shared by core's tests (not published: excluded in package.json "files").
import { LoRAError } from './errors.js';

/** The LoRAError code `fn` throws, or undefined when it returns; any other error fails the test. */
export function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof LoRAError) return err.code;
    throw err;
  }
  return undefined;
}
