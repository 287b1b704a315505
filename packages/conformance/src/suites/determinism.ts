import { type LoRAAdapter, loadPeftAdapter } from '@lora/core';
import {
  adapterFiles,
  buildCheckpoint,
  type CausalLM,
  CHECKPOINT_PRESETS,
  Engine,
  loadModel,
  referenceLogits,
  Sequence,
} from '@lora/llama';
import { describe, expect, it } from 'vitest';
import { type BackendCapabilities, type BackendFactory, DEFAULT_TOLERANCE, isNode, makeRuntime } from '../harness.js';
import { Random } from '../random.js';

/**
 * "At temperature 0 a request's tokens never depend on its batch": every kernel must compute a
 * token's row the same way whatever else shares the batch (its slot's segment length, the number
 * of adapters, prefill or decode neighbours). Checked at two levels on a real (tiny) Llama from
 * @lora/llama: logits of a sequence alone vs in mixed batches, bit for bit; and the Engine's tokens
 * for concurrent requests on more adapters than slots vs each request run alone.
 */

const ADAPTERS = [
  { id: 'qkvo-r8', rank: 8, alpha: 16, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] },
  { id: 'mlp-r4', rank: 4, alpha: 4, targets: ['gate_proj', 'up_proj', 'down_proj'] },
  { id: 'all-r2-rs', rank: 2, alpha: 8, rslora: true, targets: ['embed_tokens', 'q_proj', 'v_proj', 'down_proj', 'lm_head'] },
  { id: 'dora-r4', rank: 4, alpha: 8, dora: true, targets: ['q_proj', 'k_proj', 'o_proj', 'up_proj', 'lm_head'] },
] as const;

/** A weighted mix of two of them (issue #19): its second adapter rides in a mix lane. */
const MIX = [
  { id: 'qkvo-r8', weight: 0.6 },
  { id: 'all-r2-rs', weight: -0.8 },
] as const;

/** What a member asks for: an adapter, a mix, or the base model. */
type Ask = string | null | typeof MIX;

/** An activated LoRA (PEFT `alora_invocation_tokens`) on the attention and MLP projections. */
const ALORA = {
  id: 'alora',
  rank: 8,
  alpha: 16,
  invocationTokens: [11, 12],
  targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
};

async function tinyModel(factory: BackendFactory, maxLoras: number) {
  const checkpoint = buildCheckpoint({ ...CHECKPOINT_PRESETS['llama-untied'], hiddenSize: 48, intermediateSize: 80, vocabSize: 96 });
  const runtime = await makeRuntime(factory, { maxLoras, maxLoraRank: 8, maxCpuLoras: 4, maxNumTokens: 256 });
  const { model } = await loadModel(checkpoint.files, { runtime });
  const adapters: LoRAAdapter[] = ADAPTERS.map((spec, i) => loadPeftAdapter({ id: spec.id, ...adapterFiles(model.config, spec, 500 + i) }));
  for (const a of adapters) runtime.adapters.register(a);
  return {
    model,
    checkpoint,
    dispose() {
      model.dispose();
      runtime.dispose();
    },
  };
}

/** max |got − ref| over a row, relative to the reference row's root mean square (the llama package's measure). */
function rowError(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  let [max, ss] = [0, 0];
  for (let i = 0; i < ref.length; i++) {
    max = Math.max(max, Math.abs((got[i] as number) - (ref[i] as number)));
    ss += (ref[i] as number) ** 2;
  }
  return max / Math.sqrt(ss / ref.length || 1);
}

const bits = (row: Float32Array) => Array.from(new Uint32Array(row.buffer.slice(row.byteOffset, row.byteOffset + row.byteLength)));

interface Member {
  adapter: Ask;
  prompt: Int32Array;
}

/** Prefill then `decodes` decode steps of `members` as one batch; the logits rows of `watch` at each step. */
async function run(model: CausalLM, members: Member[], watch: number, decodes: number): Promise<number[][]> {
  const seqs = members.map(() => new Sequence());
  const rows: number[][] = [];
  const V = model.config.vocabSize;
  try {
    let inputs = members.map((m) => m.prompt);
    for (let step = 0; step <= decodes; step++) {
      model.runtime.adapters.setBatch(
        members.map((m) => m.adapter),
        inputs.map((t) => t.length),
      );
      const logits = await model.forward(members.map((_, i) => ({ seq: seqs[i] as Sequence, tokens: inputs[i] as Int32Array })));
      rows.push(bits(logits.subarray(watch * V, (watch + 1) * V)));
      // Everyone continues with the watched sequence's greedy token: fixed inputs, whatever the batch.
      let best = 0;
      for (let v = 1; v < V; v++) if ((logits[watch * V + v] as number) > (logits[watch * V + best] as number)) best = v;
      inputs = members.map(() => Int32Array.of(best));
    }
  } finally {
    for (const s of seqs) s.dispose();
  }
  return rows;
}

/** Case names for the skip allow-list (`BackendCapabilities.skip`). */
const BIT_IDENTICAL_LOGITS = 'bit-identical logits';
const ENGINE_TOKENS = 'engine determinism';

export function determinismSuite(factory: BackendFactory, caps: BackendCapabilities): void {
  const timeout = (caps.timeoutMs ?? 60_000) * 4;
  // Node: every backend that runs in Node checks it there; Chromium projects skip it (SwiftShader is slow).
  describe.skipIf(!isNode)('determinism: a request never depends on its batch (tiny Llama from @lora/llama)', () => {
    it.skipIf(BIT_IDENTICAL_LOGITS in (caps.skip ?? {}))(
      'logits of a sequence are bit-identical alone and in mixed batches (segments of 1–9 tokens, 0–4 adapters with DoRA and a mix, prefill and decode)',
      async () => {
        const m = await tinyModel(factory, ADAPTERS.length);
        const rng = new Random(99);
        const ids: Ask[] = [null, ...ADAPTERS.map((a) => a.id), MIX];
        const prompt = (n: number) => Int32Array.from({ length: n }, () => rng.int(0, 95));
        try {
          for (const adapter of ids) {
            const target: Member = { adapter, prompt: prompt(5) };
            const alone = await run(m.model, [target], 0, 3);
            for (let trial = 0; trial < 3; trial++) {
              // Neighbours: other adapters, the same adapter (a longer segment), none; in random order.
              const others: Member[] = Array.from({ length: rng.int(1, 6) }, () => ({
                adapter: rng.pick(ids),
                prompt: prompt(rng.int(1, 9)),
              }));
              const at = rng.int(0, others.length);
              const members = [...others.slice(0, at), target, ...others.slice(at)];
              const mixed = await run(m.model, members, at, 3);
              for (let step = 0; step < alone.length; step++) {
                expect(
                  mixed[step],
                  `adapter ${JSON.stringify(adapter)}, trial ${trial}, step ${step}: logits differ from the sequence alone`,
                ).toEqual(alone[step]);
              }
            }
          }
        } finally {
          m.dispose();
        }
      },
      timeout,
    );

    it.skipIf(ENGINE_TOKENS in (caps.skip ?? {}))(
      'the Engine: 12 concurrent requests on 4 adapters, a mix of two and none, with 2 slots, get the tokens each gets alone',
      async () => {
        const m = await tinyModel(factory, 2);
        const rng = new Random(7);
        const ids: Ask[] = [null, ...ADAPTERS.map((a) => a.id), MIX];
        try {
          const requests = Array.from({ length: 12 }, (_, i) => {
            const ask = ids[i % ids.length] as Ask;
            return {
              prompt: Array.from({ length: rng.int(1, 12) }, () => rng.int(0, 95)),
              ...(Array.isArray(ask) ? { adapters: ask } : { adapter: ask as string | null }),
              sampling: { temperature: 0, maxTokens: rng.int(2, 6), ignoreEos: true },
            };
          });
          const alone: number[][] = [];
          const solo = new Engine({ model: m.model, maxNumSeqs: 1 });
          for (const r of requests) alone.push((await solo.add(r).result).tokenIds as number[]);
          const engine = new Engine({ model: m.model, maxNumSeqs: 6, maxNumBatchedTokens: 24 });
          const results = await Promise.all(requests.map((r) => engine.add(r).result));
          expect(results.map((r) => r.tokenIds)).toEqual(alone);
        } finally {
          m.dispose();
        }
      },
      timeout,
    );

    it(
      'an activated LoRA in a mixed batch: from its last invocation on, against the float64 reference of PEFT’s rule; without one, the base model',
      async () => {
        const m = await tinyModel(factory, 2);
        const tolerance = 10 * (caps.tolerance ?? DEFAULT_TOLERANCE);
        try {
          const { config, weights } = m.checkpoint;
          const adapter = loadPeftAdapter({ id: ALORA.id, ...adapterFiles(config, ALORA, 600) });
          m.model.runtime.adapters.register(adapter);
          const invoked = [3, 11, 12, 40, 41, 9, 11, 12, 50, 51, 52]; // the last invocation starts at 6
          const plain = [3, 40, 41, 42, 9, 50];
          const seqs = [new Sequence(), new Sequence(), new Sequence()];
          try {
            // The invoked prompt prefilled in two chunks, the adapter starting inside the second,
            // beside the never-invoked prompt and a base request.
            const V = config.vocabSize;
            const adapters = m.model.runtime.adapters;
            adapters.setBatch([ALORA.id, ALORA.id, null], [4, plain.length, 1], undefined, [6, plain.length, 0]);
            const first = await m.model.forward([
              { seq: seqs[0] as Sequence, tokens: Int32Array.from(invoked.slice(0, 4)) },
              { seq: seqs[1] as Sequence, tokens: Int32Array.from(plain) },
              { seq: seqs[2] as Sequence, tokens: Int32Array.of(7) },
            ]);
            adapters.setBatch([ALORA.id, null], [invoked.length - 4, 1], undefined, [2, 0]);
            const logits = await m.model.forward([
              { seq: seqs[0] as Sequence, tokens: Int32Array.from(invoked.slice(4)) },
              { seq: seqs[2] as Sequence, tokens: Int32Array.of(8) },
            ]);
            const ref = referenceLogits(config, weights, invoked, adapter);
            expect(rowError(logits.subarray(0, V), ref[ref.length - 1] as Float64Array), 'invoked prompt').toBeLessThan(tolerance);
            const base = referenceLogits(config, weights, plain);
            expect(rowError(first.subarray(V, 2 * V), base[base.length - 1] as Float64Array), 'never invoked').toBeLessThan(tolerance);
            // The adapter changes the invoked prompt's logits, so the comparison means something.
            const whole = referenceLogits(config, weights, invoked, adapter, { adapterFrom: 0 });
            const none = referenceLogits(config, weights, invoked);
            expect(rowError(none[none.length - 1] as Float64Array, ref[ref.length - 1] as Float64Array)).toBeGreaterThan(3 * tolerance);
            expect(rowError(whole[whole.length - 1] as Float64Array, ref[ref.length - 1] as Float64Array)).toBeGreaterThan(3 * tolerance);
          } finally {
            for (const s of seqs) s.dispose();
          }
        } finally {
          m.dispose();
        }
      },
      timeout,
    );

    it.skipIf(ENGINE_TOKENS in (caps.skip ?? {}))(
      'the Engine with prefix caching: requests resumed from cached prompt blocks get the tokens they get without the cache',
      async () => {
        const m = await tinyModel(factory, 2);
        const rng = new Random(11);
        const ids: Ask[] = [null, ...ADAPTERS.map((a) => a.id), MIX];
        const system = Array.from({ length: 10 }, () => rng.int(0, 95));
        try {
          // Every prompt starts with the same 10 tokens; some requests repeat a prompt exactly.
          const requests = Array.from({ length: 8 }, (_, i) => {
            const ask = ids[i % ids.length] as Ask;
            return {
              prompt: [...system, ...Array.from({ length: i % 3 }, () => rng.int(0, 95))],
              ...(Array.isArray(ask) ? { adapters: ask } : { adapter: ask as string | null }),
              sampling: { temperature: 0, maxTokens: 3, ignoreEos: true },
            };
          });
          const solo = new Engine({ model: m.model, maxNumSeqs: 1 });
          const alone: number[][] = [];
          for (const r of requests) alone.push((await solo.add(r).result).tokenIds as number[]);
          const engine = new Engine({ model: m.model, maxNumSeqs: 4, enablePrefixCaching: true, blockSize: 4 });
          // Twice: the second round finds the first round's blocks (and the first round its own, as requests finish).
          for (let round = 0; round < 2; round++) {
            const results = await Promise.all(requests.map((r) => engine.add(r).result));
            expect(results.map((r) => r.tokenIds)).toEqual(alone);
          }
          expect(engine.stats().prefixCacheHits).toBeGreaterThanOrEqual(8 * 8); // at least two blocks per request in round 2
          await engine.close();
        } finally {
          m.dispose();
        }
      },
      timeout,
    );
  });
}
