import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writePeftAdapterDir } from '@lora/core';
import { adapterFiles, buildCheckpoint, type CheckpointSpec, decodeLoRAShare, seeded } from '@lora/llama';
import { DEMO_PRESETS } from '@lora/llama/demo';
import { createServing, type Serving } from '../node/load.js';
import { loraRootResolver } from '../node/lora-root.js';
import { acquireRetrying, closedLoop } from './requests.js';
import { percentile } from './stats.js';

/**
 * Issue #22's many-adapter benchmark: `adapters` PEFT adapters generated on disk (ranks cycled
 * through `ranks`, each on a different set of projections), served from a `--lora-root` with
 * `maxLoras` device slots and a host cache of `maxCpuLoras` adapters and `maxCpuLoraBytes` bytes;
 * `requests` completions from `concurrency` clients (each sends its next when its last ended),
 * every request on an adapter drawn uniformly or by Zipf(1.0), against the same traffic over
 * `referenceAdapters` adapters (all of them resident after their first request). In process,
 * through the server's model registry and engine (what load and evict), without HTTP.
 */
export interface AdaptersScaleOptions {
  /** Default: the demo's "default" preset (hidden 512, 4 layers). */
  readonly model?: CheckpointSpec;
  /** Adapters on disk (default 1000). */
  readonly adapters?: number;
  /** Their ranks, cycled (default 8, 16, 32, 64). */
  readonly ranks?: readonly number[];
  /** Device slots (default 64). */
  readonly maxLoras?: number;
  /** Host cache in adapters (default 4 × maxLoras). */
  readonly maxCpuLoras?: number;
  /** Host cache in bytes (default: what `maxCpuLoras` adapters of the middle rank take). */
  readonly maxCpuLoraBytes?: number;
  /**
   * The servers' slot budget, `--max-slot-memory` (default 8 GiB): 64 slots of rank 64 on a 49k
   * vocabulary (the smollm2 preset) need ~4.4 GB, the embedding's and LM head's slots most of it,
   * past core's 2 GiB default. A budget, not an allocation: the slots take what their shapes need.
   */
  readonly maxSlotMemory?: number;
  /** Requests per traffic pattern (default 512). */
  readonly requests?: number;
  /** Clients sending at once (default 16); also the engine's maxNumSeqs. */
  readonly concurrency?: number;
  /** Prompt and output tokens per request (default 32 and 16). */
  readonly inputLength?: number;
  readonly outputLength?: number;
  /** The reference run's adapters (default 8). */
  readonly referenceAdapters?: number;
  /** Rounds, each running the three traffic patterns back to back in a rotated order (default 3). */
  readonly rounds?: number;
  /**
   * Cold-start probes (default 40): under the reference run's load, one client alternates a request
   * on a resident adapter with one on a cold adapter read from disk.
   */
  readonly probes?: number;
  /**
   * Size of each cold probe's adapter file (default 16 MiB, issue #22's "16 MB adapter"): every
   * projection at the rank that reaches it. The probes run on a server of their own whose
   * `maxLoraRank` covers that rank (so the main runs keep theirs), with the reference adapters.
   */
  readonly probeAdapterBytes?: number;
  readonly onProgress?: (line: string) => void;
}

/** Where a request's adapter was when the request arrived. */
export type AdapterTier = 'device' | 'host' | 'source';

/** One traffic pattern over every round. */
export interface TrafficResult {
  readonly traffic: string;
  readonly adapters: number;
  /** Median over rounds. */
  readonly tokensPerSecond: number;
  /** Its tokens/s over the reference pattern's in the same round: median and 25th / 75th percentiles over rounds. */
  readonly ratio: { readonly median: number; readonly low: number; readonly high: number };
  /** TTFT (ms) p50 / p99 and request count, every round's requests together, by where the adapter was when the request arrived. */
  readonly ttft: Readonly<Record<AdapterTier, { readonly p50: number; readonly p99: number; readonly n: number }>>;
  /** Medians over rounds. */
  readonly loadsPerSecond: number;
  readonly evictionsPerSecond: number;
  /** Most bytes of adapter weights in the host cache at once (sampled after every request, every round). */
  readonly peakHostBytes: number;
  /** Requests refused with 429 (host cache full of adapters in use) and sent again, every round together. */
  readonly refusals: number;
  /**
   * What LoRA must cost here: the running adapters' bytes (true ranks, sampled at every request's
   * first token) over a decode step's base bytes (@lora/llama `decodeLoRAShare`), mean over the run.
   */
  readonly loraShare: number;
  /**
   * The tokens/s ratio to the reference that those bytes allow, (1 + reference share) / (1 + this
   * share): where LoRA bytes are a large part of a step, more distinct adapters per step must cost.
   */
  readonly mustRatio: number;
}

/** One pattern's one round. */
interface RoundRun {
  readonly tokensPerSecond: number;
  readonly records: readonly { readonly tier: AdapterTier; readonly ttftMs: number; readonly refusals: number; readonly share: number }[];
  readonly loadsPerSecond: number;
  readonly evictionsPerSecond: number;
  readonly peakHostBytes: number;
  readonly loraShare: number;
}

/** TTFT of the probes, each request alone on its client while the reference traffic runs. */
export interface ColdStartProbe {
  /** Bytes of each cold probe's adapter (every projection, at the rank that reaches `probeAdapterBytes`). */
  readonly adapterBytes: number;
  /** TTFT (ms) p50 / p99 of the probes on a resident adapter (in a device slot or the host cache), and on one read from disk. */
  readonly resident: { readonly p50: number; readonly p99: number; readonly n: number };
  readonly cold: { readonly p50: number; readonly p99: number; readonly n: number };
  /** How long the cold probes waited for their adapter (read, parse, check, register), ms p50 / p99. */
  readonly loadMs: { readonly p50: number; readonly p99: number };
}

export interface AdaptersScaleResult {
  readonly config: {
    readonly model: string;
    readonly adapters: number;
    readonly ranks: readonly number[];
    readonly maxLoras: number;
    readonly maxCpuLoras: number;
    readonly maxCpuLoraBytes: number;
    readonly requests: number;
    readonly concurrency: number;
    readonly rounds: number;
    /** Bytes of all generated adapters, and of the largest one. */
    readonly totalAdapterBytes: number;
    readonly largestAdapterBytes: number;
  };
  readonly runs: readonly TrafficResult[];
  readonly probe: ColdStartProbe;
}

const ATTENTION = ['q_proj', 'k_proj', 'v_proj', 'o_proj'];
const MLP = ['gate_proj', 'up_proj', 'down_proj'];
/** Target sets cycled over the adapters: attention only, MLP only, everything, q and v. */
const TARGETS = [ATTENTION, MLP, [...ATTENTION, ...MLP], ['q_proj', 'v_proj']];

/** Issue #22's proportions on the tiny model, in seconds: 200 adapters, 16 slots (`npm run bench -- --quick`). */
export const QUICK_ADAPTERS_SCALE: AdaptersScaleOptions = {
  model: DEMO_PRESETS.tiny,
  adapters: 200,
  maxLoras: 16,
  maxCpuLoras: 64,
  requests: 256,
  concurrency: 8,
  probes: 16,
  probeAdapterBytes: 2 ** 20,
};

/** A couple of seconds, for tests and `npm run bench -- --tiny`: 24 adapters through 2 slots and a 4-adapter cache. */
export const TINY_ADAPTERS_SCALE: AdaptersScaleOptions = {
  model: DEMO_PRESETS.tiny,
  adapters: 24,
  ranks: [2, 4, 8],
  maxLoras: 2,
  maxCpuLoras: 4,
  requests: 64,
  concurrency: 3,
  inputLength: 6,
  outputLength: 2,
  referenceAdapters: 2,
  rounds: 1,
  probes: 3,
  probeAdapterBytes: 2 ** 16,
};

function withDefaults(o: AdaptersScaleOptions) {
  const maxLoras = o.maxLoras ?? 64;
  return {
    model: o.model ?? DEMO_PRESETS.default,
    adapters: o.adapters ?? 1000,
    ranks: o.ranks ?? [8, 16, 32, 64],
    maxLoras,
    maxCpuLoras: o.maxCpuLoras ?? 4 * maxLoras,
    requests: o.requests ?? 512,
    concurrency: o.concurrency ?? 16,
    inputLength: o.inputLength ?? 32,
    outputLength: o.outputLength ?? 16,
    referenceAdapters: o.referenceAdapters ?? 8,
    rounds: o.rounds ?? 3,
    probes: o.probes ?? 40,
    probeAdapterBytes: o.probeAdapterBytes ?? 16 * 2 ** 20,
    maxSlotMemory: o.maxSlotMemory ?? 8 * 2 ** 30,
  };
}

/** Progress lines {@link runAdaptersScaleBench} reports: generation, loading, the warm-up, three runs per round and the probes (a caller’s progress bar total). */
export const adaptersScaleSteps = (options: AdaptersScaleOptions = {}): number => 4 + 3 * withDefaults(options).rounds;

/** Adapter index for request i: uniform, or Zipf(1.0) (P(k) ∝ 1/k) over a seeded permutation. */
function picker(kind: 'uniform' | 'zipf', n: number, seed: number): () => number {
  const next = seeded(seed);
  if (kind === 'uniform') return () => Math.floor(next() * n);
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let k = 0; k < n; k++) cdf[k] = sum += 1 / (k + 1);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [order[i], order[j]] = [order[j] as number, order[i] as number];
  }
  return () => {
    const u = next() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((cdf[mid] as number) < u) lo = mid + 1;
      else hi = mid;
    }
    return order[lo] as number;
  };
}

interface RequestShape {
  readonly inputLength: number;
  readonly outputLength: number;
  readonly vocab: number;
}

const summary = (xs: number[]) => ({ p50: percentile(xs, 50), p99: percentile(xs, 99), n: xs.length });

/** Request `i`'s prompt: seeded token ids, the same for request `i` in every run and round. */
function promptFor(i: number, shape: RequestShape): number[] {
  const next = seeded(1_000_003 + i);
  return Array.from({ length: shape.inputLength }, () => Math.floor(next() * shape.vocab));
}

/** One request as a client sends it: its adapter's tier on arrival, the wait for the adapter, TTFT from arrival, tokens. */
async function timedRequest(serving: Serving, name: string, i: number, shape: RequestShape) {
  const { models } = serving.app;
  const tier = models.tierOf(name) as AdapterTier;
  const start = performance.now();
  const { lease, refusals } = await acquireRetrying(models, name);
  const acquireMs = performance.now() - start;
  try {
    const handle = serving.engine.add({
      prompt: promptFor(i, shape),
      adapter: lease.adapter,
      sampling: { maxTokens: shape.outputLength, ignoreEos: true, temperature: 0 },
    });
    let first: number | undefined;
    let share = 0;
    let tokens = 0;
    for await (const d of handle) {
      if (d.tokenIds.length > 0 && first === undefined) {
        first = performance.now();
        // Sampled while this request runs (at its end, in lock-step traffic, nothing would be running).
        share = runningShare(serving, shape.inputLength + shape.outputLength / 2);
      }
      tokens += d.tokenIds.length;
    }
    return { tier, acquireMs, ttftMs: (first ?? performance.now()) - start, tokens, refusals, share };
  } finally {
    lease.release();
  }
}

/** The LoRA bytes share of a decode step over the requests running now (each adapter once, at its true rank). */
function runningShare(serving: Serving, length: number): number {
  const { runningAdapters, running } = serving.engine.stats();
  const adapters = runningAdapters.map((id) => serving.runtime.adapters.get(id) ?? null);
  const step = { length, adapters: [...adapters, ...new Array<null>(Math.max(0, running - adapters.length)).fill(null)] };
  return decodeLoRAShare(serving.model.config, step).bytes;
}

/**
 * Cold-start probes at the reference run's load: the reference traffic from all clients but one,
 * and on the last one a request on a resident adapter (one of the reference run's, in memory) and
 * one on a cold adapter (read from disk), in turn — which goes first alternates — each after a
 * short seeded pause so that arrivals fall anywhere in a step. `serving` serves nothing yet.
 */
async function probeColdStarts(
  serving: Serving,
  dir: string,
  o: { referenceAdapters: number; probes: number; concurrency: number; requests: number; probeBytes: number; request: RequestShape },
): Promise<ColdStartProbe> {
  const { models } = serving.app;
  const resolve = await loraRootResolver(dir, { loader: serving.loader });
  // The probes' adapters first: the reference ones, added after them, push them out to disk.
  for (let i = 0; i < o.probes; i++) await models.add(`p${i}`, await resolve(`p${i}`));
  for (let i = 0; i < o.referenceAdapters; i++) await models.add(`a${i}`, await resolve(`a${i}`));
  const reference = (i: number) => timedRequest(serving, `a${i % o.referenceAdapters}`, i, o.request);
  // Warm-up: this server's first prefill shapes and packing.
  await closedLoop(2 * o.concurrency, o.concurrency, reference);
  const probes: { cold: boolean; tier: AdapterTier; ttftMs: number; acquireMs: number }[] = [];
  let stop = false;
  const background = Promise.all(
    Array.from({ length: Math.max(1, o.concurrency - 1) }, async (_, c) => {
      for (let i = c; !stop; i += o.concurrency) await reference(i);
    }),
  );
  const pause = seeded(31);
  try {
    for (let k = 0; k < o.probes; k++) {
      for (const cold of k % 2 === 0 ? [false, true] : [true, false]) {
        await new Promise((r) => setTimeout(r, 5 + pause() * 45));
        const at = o.requests + 2 * k + (cold ? 1 : 0);
        probes.push({ cold, ...(await timedRequest(serving, cold ? `p${k}` : 'a0', at, o.request)) });
      }
    }
  } finally {
    stop = true;
    await background;
  }
  // Only probes that found their adapter where they were meant to count.
  const coldProbes = probes.filter((p) => p.cold && p.tier === 'source');
  return {
    adapterBytes: o.probeBytes,
    resident: summary(probes.filter((p) => !p.cold && p.tier !== 'source').map((p) => p.ttftMs)),
    cold: summary(coldProbes.map((p) => p.ttftMs)),
    loadMs: summary(coldProbes.map((p) => p.acquireMs)),
  };
}

export async function runAdaptersScaleBench(options: AdaptersScaleOptions = {}): Promise<AdaptersScaleResult> {
  const o = withDefaults(options);
  const log = options.onProgress ?? (() => {});
  const checkpoint = buildCheckpoint(o.model);
  const dir = await mkdtemp(join(tmpdir(), 'lora-adapters-scale-'));
  let serving: Serving | undefined;
  try {
    // 1. Adapters on disk, as save_pretrained writes them.
    let totalAdapterBytes = 0;
    let largestAdapterBytes = 0;
    const sizeOfRank = new Map<number, number>();
    for (let i = 0; i < o.adapters; i++) {
      const rank = o.ranks[i % o.ranks.length] as number;
      const targets = TARGETS[Math.floor(i / o.ranks.length) % TARGETS.length] as string[];
      const files = adapterFiles(checkpoint.config, { id: `a${i}`, rank, alpha: 2 * rank, targets }, 40_000 + i);
      await writePeftAdapterDir(join(dir, `a${i}`), files);
      totalAdapterBytes += files.safetensors.byteLength;
      largestAdapterBytes = Math.max(largestAdapterBytes, files.safetensors.byteLength);
      if (targets.length === 7) sizeOfRank.set(rank, files.safetensors.byteLength);
    }
    // The cold-start probes' adapters: every projection, at the rank that makes them probeAdapterBytes, each used once.
    const perRank = (sizeOfRank.get(Math.max(...o.ranks)) ?? largestAdapterBytes) / Math.max(...o.ranks);
    const probeRank = Math.ceil(o.probeAdapterBytes / perRank);
    let probeBytes = 0;
    for (let i = 0; i < o.probes; i++) {
      const files = adapterFiles(
        checkpoint.config,
        { id: `p${i}`, rank: probeRank, alpha: 2 * probeRank, targets: TARGETS[2] as string[] },
        90_000 + i,
      );
      await writePeftAdapterDir(join(dir, `p${i}`), files);
      probeBytes = files.safetensors.byteLength;
    }
    log(`adapters-scale: ${o.adapters} adapters written (${(totalAdapterBytes / 2 ** 20).toFixed(0)} MB)`);
    const middle = [...o.ranks].sort((a, b) => a - b)[Math.floor(o.ranks.length / 2)] as number;
    const maxCpuLoraBytes = options.maxCpuLoraBytes ?? o.maxCpuLoras * (sizeOfRank.get(middle) ?? largestAdapterBytes);
    const serve = (maxLoras: number, maxLoraRank: number, maxCpuLoras: number, bytes?: number) =>
      createServing({
        modelFiles: checkpoint.files,
        servedModelName: 'base',
        maxLoras,
        maxLoraRank,
        maxCpuLoras,
        maxSlotMemory: o.maxSlotMemory,
        ...(bytes !== undefined ? { maxCpuLoraBytes: bytes } : {}),
        maxNumSeqs: o.concurrency,
        maxQueue: Math.max(256, o.requests),
      });
    serving = await serve(o.maxLoras, Math.max(...o.ranks), o.maxCpuLoras, maxCpuLoraBytes);
    const { models } = serving.app;
    const resolve = await loraRootResolver(dir, { loader: serving.loader });
    // 2. Served by name: each read, checked and registered once (vLLM's load_lora_adapter), then evicted as the cache fills.
    for (let i = 0; i < o.adapters; i++) await models.add(`a${i}`, await resolve(`a${i}`));
    log(`adapters-scale: ${o.adapters} adapters served`);
    const s = serving;
    const request = { inputLength: o.inputLength, outputLength: o.outputLength, vocab: checkpoint.config.vocabSize };
    const run = async (traffic: 'uniform' | 'zipf', adapters: number): Promise<RoundRun> => {
      const pick = picker(traffic, adapters, 7 * adapters + (traffic === 'zipf' ? 1 : 0));
      const names = Array.from({ length: o.requests }, () => `a${pick()}`);
      // The same requests every round: the rounds differ only in what the cache holds and the machine does.
      const before = models.counters;
      let peakHostBytes = 0;
      const { results: records, ms } = await closedLoop(o.requests, o.concurrency, async (i) => {
        try {
          return await timedRequest(s, names[i] as string, i, request);
        } finally {
          peakHostBytes = Math.max(peakHostBytes, s.runtime.adapters.hostMemory);
        }
      });
      const seconds = ms / 1000;
      const after = models.counters;
      const result: RoundRun = {
        tokensPerSecond: records.reduce((n, r) => n + r.tokens, 0) / seconds,
        records,
        loadsPerSecond: (after.loads - before.loads) / seconds,
        evictionsPerSecond: (after.evictions - before.evictions) / seconds,
        peakHostBytes,
        loraShare: records.reduce((n, r) => n + r.share, 0) / records.length,
      };
      log(`adapters-scale: ${traffic} over ${adapters} adapters, ${result.tokensPerSecond.toFixed(0)} tokens/s`);
      return result;
    };
    // Warm-up (first prefill shapes, XNNPACK packing) on the reference adapters, then the rounds,
    // each running the three patterns in a rotated order so that none always runs first.
    await run('uniform', o.referenceAdapters);
    const patterns = [
      ['uniform', o.referenceAdapters],
      ['uniform', o.adapters],
      ['zipf', o.adapters],
    ] as const;
    const rounds: RoundRun[][] = [];
    for (let k = 0; k < o.rounds; k++) {
      const round: RoundRun[] = new Array(patterns.length);
      for (let j = 0; j < patterns.length; j++) {
        const p = (j + k) % patterns.length;
        const [traffic, adapters] = patterns[p] as (typeof patterns)[number];
        round[p] = await run(traffic, adapters);
      }
      rounds.push(round);
    }
    // 3. Cold-start probes, on a server of their own: a maxLoraRank that covers their rank, slots for
    // the reference adapters and one probe, a host cache as large (so each probe load evicts the last probe: every one is on disk when asked for).
    await serving.dispose();
    serving = await serve(o.referenceAdapters + 1, Math.max(probeRank, ...o.ranks), o.referenceAdapters + 1);
    const probe = await probeColdStarts(serving, dir, { ...o, probeBytes, request });
    log(
      `adapters-scale: ${probe.cold.n} cold-start probes, TTFT p99 ${probe.cold.p99.toFixed(0)} ms vs ${probe.resident.p99.toFixed(0)} ms resident`,
    );
    const median = (xs: number[]) => percentile(xs, 50);
    const runs = patterns.map(([traffic, adapters], p): TrafficResult => {
      const mine = rounds.map((round) => round[p] as RoundRun);
      const ratios = rounds.map((round) => (round[p] as RoundRun).tokensPerSecond / (round[0] as RoundRun).tokensPerSecond);
      const records = mine.flatMap((r) => r.records);
      const ttftOf = (tier: AdapterTier) => summary(records.filter((r) => r.tier === tier).map((r) => r.ttftMs));
      return {
        traffic,
        adapters,
        tokensPerSecond: median(mine.map((r) => r.tokensPerSecond)),
        ratio: { median: median(ratios), low: percentile(ratios, 25), high: percentile(ratios, 75) },
        ttft: { device: ttftOf('device'), host: ttftOf('host'), source: ttftOf('source') },
        loadsPerSecond: median(mine.map((r) => r.loadsPerSecond)),
        evictionsPerSecond: median(mine.map((r) => r.evictionsPerSecond)),
        peakHostBytes: Math.max(...mine.map((r) => r.peakHostBytes)),
        refusals: records.reduce((n, r) => n + r.refusals, 0),
        loraShare: median(mine.map((r) => r.loraShare)),
        mustRatio: median(rounds.map((round) => (1 + (round[0] as RoundRun).loraShare) / (1 + (round[p] as RoundRun).loraShare))),
      };
    });
    return {
      config: {
        model: 'name' in o.model ? String((o.model as { name: string }).name) : o.model.architecture,
        adapters: o.adapters,
        ranks: o.ranks,
        maxLoras: o.maxLoras,
        maxCpuLoras: o.maxCpuLoras,
        maxCpuLoraBytes,
        requests: o.requests,
        concurrency: o.concurrency,
        rounds: o.rounds,
        totalAdapterBytes,
        largestAdapterBytes,
      },
      runs,
      probe,
    };
  } finally {
    await serving?.dispose();
    await rm(dir, { recursive: true, force: true });
  }
}

/** The runs as a markdown table, each against the reference run's tokens/s, and the #22 targets. */
export function adaptersScaleTable(r: AdaptersScaleResult): string {
  const ms = (x: number) => (Number.isNaN(x) ? '–' : x.toFixed(0));
  const tier = (t: TrafficResult['ttft'][AdapterTier]) => (t.n === 0 ? '–' : `${ms(t.p50)} / ${ms(t.p99)} (${t.n})`);
  const mb = (b: number) => (b / 2 ** 20).toFixed(1);
  const c = r.config;
  const rows = r.runs.map(
    (run) =>
      `| ${run.traffic} over ${run.adapters} | ${run.tokensPerSecond.toFixed(0)} | ${run.ratio.median.toFixed(2)}× [${run.ratio.low.toFixed(2)}, ${run.ratio.high.toFixed(2)}] | ${tier(run.ttft.device)} | ${tier(run.ttft.host)} | ${tier(run.ttft.source)} | ${run.loadsPerSecond.toFixed(1)} | ${run.evictionsPerSecond.toFixed(1)} | ${mb(run.peakHostBytes)} | ${run.refusals} | ${(100 * run.loraShare).toFixed(0)} % · ${run.mustRatio.toFixed(2)}× |`,
  );
  return [
    `Model ${c.model}; ${c.adapters} adapters on disk (ranks ${c.ranks.join('/')}, ${mb(c.totalAdapterBytes)} MB, largest ${mb(c.largestAdapterBytes)} MB); ${c.maxLoras} device slots; host cache ${c.maxCpuLoras} adapters / ${mb(c.maxCpuLoraBytes)} MB; ${c.requests} requests per run from ${c.concurrency} clients; ${c.rounds} rounds of the three patterns in rotated order (medians; tokens/s against the reference run of the same round, median [25th, 75th percentile]).`,
    '',
    '| traffic | tokens/s | vs reference [IQR] | TTFT ms p50 / p99 (n): adapter in a device slot | in host memory | on disk | loads/s | evictions/s | peak host MB | 429s, sent again | LoRA bytes / base step · ratio they allow |',
    '| --- | ---: | ---: | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
    '',
    `Cold start at the reference run's load (on a server of its own: ${c.concurrency - 1} clients on the reference run's ${r.runs[0]?.adapters} adapters, one probe client): TTFT of a request whose ${mb(r.probe.adapterBytes)} MB adapter is on disk, ${tier(r.probe.cold)} ms (p50 / p99 (n)), against one on a resident adapter (in memory), ${tier(r.probe.resident)} ms; the cold ones waited ${ms(r.probe.loadMs.p50)} / ${ms(r.probe.loadMs.p99)} ms for their adapter (read, parse and check in the adapter-load thread, then registered).`,
  ].join('\n');
}
