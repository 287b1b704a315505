import type { FinishReason, StepInfo } from '@lora/llama';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { MetricsSnapshot, ServerMetrics } from '../metrics.js';
import { gieGauges } from './gie-metrics.js';

// Bucket edges after vLLM `v1/metrics/loggers.py` (time_to_first_token_seconds, inter_token_latency_seconds).
const TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80];
const ITL_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 10];
const E2E_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 60, 120, 300];

/**
 * The server's metrics in Prometheus' text format through prom-client, named after vLLM's
 * (`vllm:num_requests_running` → `lora_num_requests_running`, ...): a registry of its own, so two
 * servers in one process (tests) do not collide.
 */
export function promMetrics(prefix = 'lora_'): ServerMetrics & {
  /** The prom-client registry holding every series (the prefixed ones and the `vllm:*` gauges), for reading or merging elsewhere. */
  readonly registry: Registry;
} {
  const registry = new Registry();
  const registers = [registry];
  const n = (name: string) => `${prefix}${name}`;
  const requests = new Counter({
    name: n('http_requests_total'),
    help: 'Generation requests answered, by endpoint, HTTP status and model (base model or adapter name; empty when not served).',
    labelNames: ['endpoint', 'status', 'model'],
    registers,
  });
  const finished = new Counter({
    name: n('request_finished_total'),
    help: 'Generations that ended, by model and finish reason (stop, length, abort, error).',
    labelNames: ['model', 'finished_reason'],
    registers,
  });
  const promptTokens = new Counter({
    name: n('prompt_tokens_total'),
    help: 'Prompt tokens of finished generations.',
    labelNames: ['model'],
    registers,
  });
  const generationTokens = new Counter({ name: n('generation_tokens_total'), help: 'Tokens generated.', labelNames: ['model'], registers });
  const swaps = new Counter({
    name: n('adapter_swaps_total'),
    help: 'Adapters written into a device slot (first activations and re-activations after eviction).',
    registers,
  });
  const steps = new Counter({ name: n('engine_steps_total'), help: 'Engine steps (one forward pass each).', registers });
  // The engine counts these; a scrape adds what it counted since the last one.
  const prefixQueries = new Counter({
    name: n('prefix_cache_queries_total'),
    help: 'Prompt tokens looked up in the prefix cache (--enable-prefix-caching).',
    registers,
  });
  const prefixHits = new Counter({ name: n('prefix_cache_hits_total'), help: 'Prompt tokens served from the prefix cache.', registers });
  const loads = new Counter({
    name: n('adapter_loads_total'),
    help: 'Adapters read from their source and registered in host memory.',
    registers,
  });
  const evictions = new Counter({
    name: n('adapter_evictions_total'),
    help: 'Adapters evicted from host memory to make room (--max-cpu-loras, --max-cpu-lora-bytes).',
    registers,
  });
  let counted = { queries: 0, hits: 0, loads: 0, evictions: 0 };
  const ttft = new Histogram({
    name: n('time_to_first_token_seconds'),
    help: 'Request arrival to first token.',
    buckets: TTFT_BUCKETS,
    registers,
  });
  const itl = new Histogram({
    name: n('inter_token_latency_seconds'),
    help: 'Time between consecutive tokens of a request.',
    buckets: ITL_BUCKETS,
    registers,
  });
  const e2e = new Histogram({
    name: n('e2e_request_latency_seconds'),
    help: 'Request arrival to last token.',
    buckets: E2E_BUCKETS,
    registers,
  });
  const gauge = (name: string, help: string) => new Gauge({ name: n(name), help, registers });
  const gauges = {
    waiting: gauge('num_requests_waiting', 'Requests in the queue (bounded by --max-queue).'),
    running: gauge('num_requests_running', 'Requests in the running batch.'),
    kvCacheUsage: gauge('kv_cache_usage_perc', 'KV-cache tokens held over the planned maximum (0-1).'),
    adaptersServed: gauge('adapters_served', 'Adapters served by name (/v1/models).'),
    adaptersLoaded: gauge('adapters_loaded', "Adapters in the runtime's host cache (--max-cpu-loras)."),
    adaptersActive: gauge('adapters_active', 'Adapters in device slots (--max-loras).'),
    adaptersRunning: gauge('adapters_running', 'Distinct adapters of running requests.'),
  };
  const gie = gieGauges(registry);
  let slots: readonly (string | null)[] = [];
  return {
    registry,
    request: (endpoint, status, model) => requests.inc({ endpoint, status: String(status), model }),
    finished(model: string, reason: FinishReason, prompt: number, generated: number) {
      finished.inc({ model, finished_reason: reason });
      promptTokens.inc({ model }, prompt);
      generationTokens.inc({ model }, generated);
    },
    firstToken: (s) => ttft.observe(s),
    interToken: (s) => itl.observe(s),
    e2e: (s) => e2e.observe(s),
    step(_step: StepInfo, now: readonly (string | null)[]) {
      steps.inc();
      const changed = now.filter((id, i) => id !== null && id !== slots[i]).length;
      if (changed > 0) swaps.inc(changed);
      slots = [...now];
    },
    async render(s: MetricsSnapshot) {
      for (const [key, g] of Object.entries(gauges)) g.set(s[key as keyof typeof gauges]);
      prefixQueries.inc(Math.max(0, s.prefixCacheQueries - counted.queries));
      prefixHits.inc(Math.max(0, s.prefixCacheHits - counted.hits));
      loads.inc(Math.max(0, s.adapterLoads - counted.loads));
      evictions.inc(Math.max(0, s.adapterEvictions - counted.evictions));
      counted = { queries: s.prefixCacheQueries, hits: s.prefixCacheHits, loads: s.adapterLoads, evictions: s.adapterEvictions };
      gie.render(s);
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}
