import { describeValue, LoRAError } from '@lora/core';

/**
 * A file name a source may be asked for: one plain path segment. Names come from untrusted files
 * too (a sharded checkpoint's index lists its shards), so `../x`, `/etc/x`, `a/b`, `C:x`, control
 * characters and hidden names are refused before any source turns a name into a path or a URL.
 */
export function checkFileName(name: unknown, where: string): string {
  const ok =
    typeof name === 'string' &&
    name.length > 0 &&
    name.length <= 255 &&
    !name.startsWith('.') &&
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this refuses.
    !/[/\\:\u0000-\u001f\u007f]/.test(name);
  if (!ok) {
    throw new LoRAError(
      'E_FORMAT',
      `${where}: ${describeValue(name)} is not a plain file name (no directories, "..", ":" or control characters)`,
    );
  }
  return name as string;
}

/** A source's bytes for one file, or E_FORMAT naming it when there are more than the reader allows. */
export function checkSize(bytes: number, maxBytes: number, file: string): void {
  if (bytes > maxBytes) throw new LoRAError('E_FORMAT', `${file} is ${bytes} bytes; at most maxBytes = ${maxBytes} may be read`);
}

/** `description/name` for messages (a URL description already ends with a slash). */
export function filePath(description: string, name: string): string {
  return description.endsWith('/') ? `${description}${name}` : `${description}/${name}`;
}
