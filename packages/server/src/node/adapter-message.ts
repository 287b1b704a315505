import { type AdapterModuleWeights, createAdapter, isLoRAError, LoRAError, type LoRAErrorCode, type PeftAdapter } from '@lora/core';
import type { AdapterDirResult, PEFT_FILES } from './adapter-dir.js';

/**
 * How a read adapter crosses from the adapter-load worker to the main thread: its modules as
 * plain records whose typed arrays are transferred (moved, not copied), everything else of the
 * adapter (PEFT config, file metadata, invocation tokens) as it was, and errors as code and text.
 */
export type AdapterDirMessage =
  | {
      readonly kind: 'adapter';
      readonly modules: readonly AdapterModuleWeights[];
      readonly extra: Omit<PeftAdapter, 'id' | 'rank' | 'modules'>;
    }
  | { readonly kind: 'outside' }
  | { readonly kind: 'missing'; readonly file: (typeof PEFT_FILES)[number] }
  | { readonly kind: 'error'; readonly code: LoRAErrorCode | undefined; readonly message: string };

/** The message for a result, and the buffers to transfer with it. */
export function packResult(result: AdapterDirResult): { message: AdapterDirMessage; transfer: ArrayBuffer[] } {
  if ('outside' in result) return { message: { kind: 'outside' }, transfer: [] };
  if ('missing' in result) return { message: { kind: 'missing', file: result.missing }, transfer: [] };
  const { id: _id, rank: _rank, modules: map, ...extra } = result.adapter;
  const modules = [...map.values()].map((m) => ({ ...m }));
  const buffers = new Set<ArrayBuffer>();
  for (const m of modules) for (const a of [m.a, m.b, m.magnitude]) if (a !== undefined) buffers.add(a.buffer as ArrayBuffer);
  return { message: { kind: 'adapter', modules, extra }, transfer: [...buffers] };
}

/** An error thrown while reading, as a message: a LoRAError keeps its code, anything else is a file that could not be read. */
export function packError(err: unknown): AdapterDirMessage {
  if (isLoRAError(err)) return { kind: 'error', code: err.code, message: err.message.replace(/^\[[A-Z_]+\] /, '') };
  return { kind: 'error', code: undefined, message: String((err as Error)?.message ?? err) };
}

/**
 * The result again on this thread. The adapter is built by core's `createAdapter`, which checks
 * every module once more: what arrives from another thread is not taken on trust.
 */
export function unpackMessage(message: AdapterDirMessage, id: string): AdapterDirResult {
  switch (message.kind) {
    case 'outside':
      return { outside: true };
    case 'missing':
      return { missing: message.file };
    case 'error':
      throw new LoRAError(message.code ?? 'E_FORMAT', message.message);
    case 'adapter':
      return { adapter: createAdapter(id, message.modules, message.extra) };
  }
}
