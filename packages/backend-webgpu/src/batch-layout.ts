import type { LoRAMapping } from '@lora/core';

/** Tokens per SGMV tile: a tile never crosses a segment, so all its tokens share one adapter. */
export const TOKEN_TILE = 8;

/**
 * The batch's mapping as one int32 buffer, uploaded once per batch:
 *   [0, T)        slot per token (BGMV programs)
 *   [T, 2T)       tokens grouped by slot, then the tokens without LoRA (SGMV programs)
 *   [2T, 2T+3n)   n tiles of (slot, start in the grouped order, count ≤ TOKEN_TILE)
 * The tokens without LoRA get tiles of slot -1, so shrink writes their zeros in the same pass.
 */
export interface BatchLayout {
  /** The buffer itself, `2T + 3n` values; core's `MappingUploads` uploads it as the kernels' `index` (`Meta` in WGSL). */
  readonly data: Int32Array;
  /** n: LoRA tiles (segment by segment) followed by the slot -1 tiles; SGMV programs run one workgroup row per tile. */
  readonly numTiles: number;
  /** Where the grouped token list starts in `data` (= T). */
  readonly sortedOffset: number;
  /** Where the tile list starts in `data` (= 2T). */
  readonly tilesOffset: number;
}

/**
 * How a batch's kernels run, decided once per batch by the backend object (`batch()`): 'single' —
 * one adapter, its slot a uniform, no upload; 'bgmv' — token by token through the layout's slot
 * list; 'sgmv' — token tiles per segment. With an upload, where its parts start and how many tiles.
 */
export type WebGPUBatchAttrs =
  | {
      /** One adapter for the whole batch: BGMV programs read its slot from a uniform, nothing is uploaded. */
      readonly path: 'single';
    }
  | {
      /** 'bgmv': BGMV programs over the layout's slot per token; 'sgmv': SGMV programs over its tiles. */
      readonly path: 'bgmv' | 'sgmv';
      /** The uploaded layout's `numTiles`: the SGMV programs' workgroup rows. */
      readonly numTiles: number;
      /** The uploaded layout's `sortedOffset` (= T), passed to the SGMV programs as a uniform. */
      readonly sortedOffset: number;
      /** The uploaded layout's `tilesOffset` (= 2T), passed to the SGMV programs as a uniform. */
      readonly tilesOffset: number;
    };

/**
 * The {@link BatchLayout} of one mapping: slots, tokens grouped by slot (then those without LoRA)
 * and tiles of at most {@link TOKEN_TILE} tokens that never cross a segment. The backend builds it
 * through core's `MappingUploads`, so once per mapping, and every layer of the batch reuses the upload.
 */
export function batchLayout(meta: LoRAMapping): BatchLayout {
  const T = meta.numTokens;
  const tiles: number[] = [];
  for (const { slot, start, length } of meta.segments) {
    for (let s = start; s < start + length; s += TOKEN_TILE) tiles.push(slot, s, Math.min(TOKEN_TILE, start + length - s));
  }
  const data = new Int32Array(2 * T + tiles.length + 3 * Math.ceil((T - meta.numLoRATokens) / TOKEN_TILE));
  data.set(meta.tokenLoraIndices, 0);
  data.set(meta.sortedTokenIndices, T);
  let at = T + meta.numLoRATokens;
  for (let t = 0; t < T; t++) if ((meta.tokenLoraIndices[t] as number) < 0) data[at++] = t;
  for (let s = meta.numLoRATokens; s < T; s += TOKEN_TILE) tiles.push(-1, s, Math.min(TOKEN_TILE, T - s));
  data.set(tiles, 2 * T);
  return { data, numTiles: tiles.length / 3, sortedOffset: T, tilesOffset: 2 * T };
}

/**
 * SGMV pays off when segments are long (prefill: each tile reuses A and B rows across 8 tokens);
 * decode batches, a few tokens per adapter, go token by token (BGMV).
 */
export function useSegments(meta: LoRAMapping): boolean {
  return meta.numLoRATokens >= 64 && meta.numLoRATokens >= TOKEN_TILE * meta.segments.length;
}
