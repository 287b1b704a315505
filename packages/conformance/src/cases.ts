import type { SlotPattern } from './random.js';

/**
 * Data-driven correctness cases. Shapes are chosen to break assumptions: H and O that are not
 * multiples of 4/8/16, ranks 1 to 72, 1–3 slices of different widths, T = 1 to 3000.
 */
export interface LinearCase {
  name: string;
  numTokens: number;
  hidden: number;
  outputSlices: number[];
  rank: number;
  maxLoras: number;
  pattern: SlotPattern;
  /** Column where slice 0 starts in addExpand (addLoRALinear always uses 0). */
  offsetStart?: number;
  /** Columns of y after the last slice, which no call may touch. */
  extraColumns?: number;
  scale?: number;
  seed: number;
}

export const LINEAR_CASES: LinearCase[] = [
  { name: 'T=1 single adapter rank 1', numTokens: 1, hidden: 5, outputSlices: [7], rank: 1, maxLoras: 2, pattern: 'single', seed: 1 },
  { name: 'T=7 random slots rank 8', numTokens: 7, hidden: 33, outputSlices: [17], rank: 8, maxLoras: 4, pattern: 'random', seed: 2 },
  {
    name: 'T=256 qkv slices rank 16',
    numTokens: 256,
    hidden: 129,
    outputSlices: [65, 31, 31],
    rank: 16,
    maxLoras: 5,
    pattern: 'random',
    seed: 3,
  },
  {
    name: 'T=3000 prefill requests gate_up rank 16',
    numTokens: 3000,
    hidden: 37,
    outputSlices: [41, 23],
    rank: 16,
    maxLoras: 8,
    pattern: 'requests',
    seed: 4,
  },
  { name: 'rank 64', numTokens: 64, hidden: 100, outputSlices: [99], rank: 64, maxLoras: 3, pattern: 'random', seed: 5 },
  { name: 'rank 72 (above 64)', numTokens: 9, hidden: 70, outputSlices: [33], rank: 72, maxLoras: 2, pattern: 'random', seed: 6 },
  { name: 'all tokens -1', numTokens: 16, hidden: 77, outputSlices: [13], rank: 8, maxLoras: 4, pattern: 'none', seed: 7 },
  { name: 'single adapter T=100', numTokens: 100, hidden: 50, outputSlices: [70], rank: 16, maxLoras: 4, pattern: 'single', seed: 8 },
  {
    name: 'one adapter with -1 tokens',
    numTokens: 30,
    hidden: 21,
    outputSlices: [19, 3],
    rank: 6,
    maxLoras: 3,
    pattern: 'single-with-none',
    seed: 9,
  },
  {
    name: 'every token a different adapter',
    numTokens: 24,
    hidden: 19,
    outputSlices: [11, 5],
    rank: 3,
    maxLoras: 24,
    pattern: 'distinct',
    seed: 10,
  },
  {
    name: 'offsetStart > 0 with untouched columns',
    numTokens: 20,
    hidden: 31,
    outputSlices: [10, 6],
    rank: 5,
    maxLoras: 3,
    pattern: 'random',
    offsetStart: 7,
    extraColumns: 3,
    seed: 11,
  },
  { name: 'H=1 O=1', numTokens: 13, hidden: 1, outputSlices: [1], rank: 2, maxLoras: 2, pattern: 'random', seed: 12 },
  {
    name: 'scale 0.37 rank 7',
    numTokens: 45,
    hidden: 90,
    outputSlices: [27],
    rank: 7,
    maxLoras: 6,
    pattern: 'random',
    scale: 0.37,
    seed: 13,
  },
  {
    name: 'long segments, scale 0.5, rank 12',
    numTokens: 200,
    hidden: 67,
    outputSlices: [45, 70],
    rank: 12,
    maxLoras: 3,
    pattern: 'requests',
    scale: 0.5,
    seed: 15,
  },
  {
    name: 'decode-like T=32 8 adapters',
    numTokens: 32,
    hidden: 257,
    outputSlices: [263],
    rank: 16,
    maxLoras: 8,
    pattern: 'distinct',
    seed: 14,
  },
];

export interface EmbeddingCase {
  name: string;
  numTokens: number;
  vocab: number;
  width: number;
  rank: number;
  maxLoras: number;
  pattern: SlotPattern;
  seed: number;
}

export const EMBEDDING_CASES: EmbeddingCase[] = [
  { name: 'embedding random slots', numTokens: 40, vocab: 97, width: 35, rank: 8, maxLoras: 4, pattern: 'random', seed: 21 },
  { name: 'embedding single adapter T=1', numTokens: 1, vocab: 5, width: 3, rank: 1, maxLoras: 2, pattern: 'single', seed: 22 },
  { name: 'embedding all -1', numTokens: 9, vocab: 11, width: 6, rank: 4, maxLoras: 2, pattern: 'none', seed: 23 },
];

export interface LogitsCase {
  name: string;
  numTokens: number;
  numSamples: number;
  hidden: number;
  vocab: number;
  rank: number;
  maxLoras: number;
  pattern: SlotPattern;
  seed: number;
}

export const LOGITS_CASES: LogitsCase[] = [
  { name: 'logits per sequence', numTokens: 50, numSamples: 6, hidden: 45, vocab: 301, rank: 16, maxLoras: 4, pattern: 'random', seed: 31 },
  { name: 'logits one sequence', numTokens: 1, numSamples: 1, hidden: 9, vocab: 13, rank: 3, maxLoras: 1, pattern: 'single', seed: 32 },
];
