import { Gauge, type Registry } from 'prom-client';
import type { MetricsSnapshot } from '../metrics.js';

/**
 * The gauges of the Gateway API Inference Extension's model-server protocol
 * (kubernetes-sigs/gateway-api-inference-extension `docs/proposals/003-model-server-protocol`),
 * named and shaped as vLLM exports them, because the extension's endpoint picker reads vLLM's
 * names by default (llm-d-router `extractor/metrics/factories.go`, engine "vllm"). Where our
 * meaning differs from vLLM's, docs/deploy.md says how and why.
 *
 * The picker reads the first series of each scheduler gauge, so each has exactly one, labelled
 * `model_name` (the served base model) and `engine` "0" as vLLM labels them. Of
 * `vllm:lora_requests_info` it reads the series with the largest value (vLLM: the time it was set;
 * vLLM keeps every past label set as a stale series), so we keep only the current series.
 */
export function gieGauges(registry: Registry): { render(snapshot: MetricsSnapshot): void } {
  const registers = [registry];
  const labelNames = ['model_name', 'engine'];
  const waiting = new Gauge({
    name: 'vllm:num_requests_waiting',
    help: 'Number of requests waiting to be processed.',
    labelNames,
    registers,
  });
  const running = new Gauge({
    name: 'vllm:num_requests_running',
    help: 'Number of requests in model execution batches.',
    labelNames,
    registers,
  });
  const kvUsage = new Gauge({
    name: 'vllm:kv_cache_usage_perc',
    help: 'KV-cache usage. 1 means 100 percent usage.',
    labelNames,
    registers,
  });
  // Removed from vLLM in 0.12 (vLLM PR 29330) but read by endpoint pickers of the extension before
  // its commit cfdce59a: the same value under the old name.
  const gpuUsage = new Gauge({
    name: 'vllm:gpu_cache_usage_perc',
    help: 'KV-cache usage. 1 means 100 percent usage. The name endpoint pickers before GIE commit cfdce59a read; see vllm:kv_cache_usage_perc.',
    labelNames,
    registers,
  });
  const loraInfo = new Gauge({
    name: 'vllm:lora_requests_info',
    help: 'Running stats on lora requests: the value is the Unix time of the last update.',
    labelNames: ['max_lora', 'running_lora_adapters', 'waiting_lora_adapters'],
    registers,
  });
  // The KV cache is one contiguous buffer per sequence here, not paged: one "block" is one token.
  const cacheInfo = new Gauge({
    name: 'vllm:cache_config_info',
    help: 'Information of the LLMEngine CacheConfig (block_size 1: the KV cache is counted in tokens).',
    labelNames: ['block_size', 'num_gpu_blocks', 'engine'],
    registers,
  });
  return {
    render(s) {
      const labels = { model_name: s.baseModel, engine: '0' };
      for (const g of [waiting, running, kvUsage, gpuUsage, loraInfo, cacheInfo]) g.reset();
      waiting.set(labels, s.waiting);
      running.set(labels, s.running);
      kvUsage.set(labels, s.kvCacheUsage);
      gpuUsage.set(labels, s.kvCacheUsage);
      loraInfo.set(
        {
          max_lora: String(s.maxLoras),
          running_lora_adapters: s.runningAdapters.join(','),
          waiting_lora_adapters: s.waitingAdapters.join(','),
        },
        Date.now() / 1000,
      );
      cacheInfo.set({ block_size: '1', num_gpu_blocks: String(s.kvCacheTokens), engine: '0' }, 1);
    },
  };
}
