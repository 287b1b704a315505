import { createLoRA, isLoRAError, LoRAError, type PeftAdapter } from '@lora/core';
import {
  type CausalLM,
  Engine,
  encodeChat,
  type FinishReason,
  type LoadProgress,
  loadModel,
  loadTokenizer,
  locateSource,
  type Tokenizer,
} from '@lora/llama';
import { demoAdapters, loadDemoModel } from '@lora/llama/demo';
import { presetConfig } from './cache.js';
import { loadAdapters } from './load.js';
import type { DemoOptions } from './options.js';
import type { DemoIO } from './session.js';

interface PromptResult {
  adapter: string | null;
  /** The prompt as the user gave it (text, or ids joined by commas). */
  prompt: string;
  promptIds: number[];
  generatedIds: number[];
  text: string;
  finishReason: FinishReason;
}

export interface PromptRun {
  model: string;
  backend: string;
  tokenizer: boolean;
  requests: PromptResult[];
}

const nextPowerOfTwo = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

/** A checkpoint's tokenizer when it ships one (tokenizer.json); a model without one takes token-id prompts. */
async function optionalTokenizer(source: Parameters<typeof loadTokenizer>[0]): Promise<Tokenizer | undefined> {
  try {
    return await loadTokenizer(source);
  } catch (err) {
    if (isLoRAError(err, 'E_NOT_FOUND')) return undefined;
    throw err;
  }
}

/**
 * Prompt mode: every prompt with every adapter and without one, on the embedded model (with the
 * demo adapters unless --adapters names others) or on a Hugging Face checkpoint, through the Engine.
 */
export async function runPrompts(opts: DemoOptions, io: DemoIO = {}): Promise<PromptRun> {
  const log = io.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const source = opts.model === undefined ? undefined : await locateSource(opts.model);
  let adapters: PeftAdapter[] = await loadAdapters(opts.adapters);
  const tokenizer = source === undefined ? undefined : await optionalTokenizer(source);
  if (source === undefined && adapters.length === 0) adapters = demoAdapters(presetConfig(opts.preset));
  const prompts = opts.prompts.map((p) => {
    if ('ids' in p) return { label: p.ids.join(','), ids: p.ids };
    if (tokenizer === undefined) {
      throw new LoRAError(
        'E_CONFIG',
        `--prompt needs the model's tokenizer.json (${source === undefined ? 'the embedded model has none' : `${source.description} has none`}); use --prompt-ids`,
      );
    }
    const ids = opts.chat
      ? encodeChat(tokenizer, [{ role: 'user', content: p.text }], { addGenerationPrompt: true })
      : tokenizer.encode(p.text, { addSpecialTokens: true });
    return { label: p.text, ids };
  });
  const longest = Math.max(...prompts.map((p) => p.ids.length));
  const runtime = await createLoRA({
    maxLoras: Math.max(1, Math.min(adapters.length, 8)),
    maxLoraRank: nextPowerOfTwo(Math.max(8, ...adapters.map((a) => a.rank))),
    maxCpuLoras: Math.max(8, adapters.length),
    maxNumTokens: Math.max(8192, nextPowerOfTwo(longest * (adapters.length + 1))),
    ...opts.lora,
  });
  let model: CausalLM | undefined;
  try {
    const onProgress = (e: LoadProgress) => {
      if (e.total !== undefined && e.loaded === e.total) log(`read ${e.file} (${(e.total / 1e6).toFixed(1)} MB)`);
    };
    model =
      source === undefined ? (await loadDemoModel(opts.preset, runtime)).model : (await loadModel(source, { runtime, onProgress })).model;
    for (const a of adapters) runtime.adapters.register(a);
    const description = source?.description ?? `embedded "${opts.preset.name}"`;
    log(
      `model ${description} (${model.config.architecture}, ${model.config.numHiddenLayers} layers, vocab ${model.config.vocabSize}), backend "${runtime.backend.name}", ${adapters.length} adapters, ${prompts.length} prompts`,
    );
    const engine = new Engine({ model, tokenizer, maxNumSeqs: 8 });
    const ids = [null, ...adapters.map((a) => a.id)];
    const runs = prompts.flatMap((p) =>
      ids.map((adapter) => ({
        p,
        adapter,
        result: engine.add({
          prompt: p.ids,
          adapter,
          sampling: {
            temperature: opts.temperature,
            ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
            maxTokens: opts.maxTokens ?? 32,
          },
        }).result,
      })),
    );
    const requests: PromptResult[] = [];
    for (const run of runs) {
      const r = await run.result;
      if (r.finishReason === 'error') throw r.error;
      requests.push({
        adapter: run.adapter,
        prompt: run.p.label,
        promptIds: [...r.promptIds],
        generatedIds: [...r.tokenIds],
        text: r.text,
        finishReason: r.finishReason,
      });
    }
    return { model: description, backend: runtime.backend.name, tokenizer: tokenizer !== undefined, requests };
  } finally {
    model?.dispose();
    runtime.dispose();
  }
}
