import type { LoRAError } from '@lora/core';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './test-support.js';

// A backend that dies mid-step (tfjs-wasm's module aborting when its heap runs out: "Aborted()")
// leaves nothing to serve with. vLLM answers /health with 503 on EngineDeadError so that a
// liveness probe restarts it; a server that kept saying 200 while failing every request would not be.
let s: TestServer;
const failures: LoRAError[] = [];
beforeAll(async () => {
  s = await startTestServer({ onEngineFailure: (e) => failures.push(e) });
}, 60_000);
afterAll(async () => {
  await s?.close();
});

describe('a backend failure stops the engine', () => {
  it('the request is a 500 naming the failure, /health turns 503 engine_dead, later requests are 500, onEngineFailure once', async () => {
    expect((await fetch(`${s.url}/health`)).status).toBe(200);
    const ok = await s.client.completions.create({ model: 'sql-r8', prompt: [1, 2], max_tokens: 2 });
    expect(ok.choices[0]?.finish_reason).toBeDefined();

    const { model } = s.serving;
    const forward = model.forward;
    model.forward = () => Promise.reject(new Error('Aborted()'));
    try {
      const err = await s.client.completions.create({ model: 'sql-r8', prompt: [1, 2], max_tokens: 2 }).catch((e) => e);
      expect(err).toBeInstanceOf(OpenAI.InternalServerError);
      expect(err.error).toMatchObject({
        type: 'server_error',
        message: expect.stringMatching(/engine stopped after a backend failure.*Aborted\(\)/),
      });

      const health = await fetch(`${s.url}/health`);
      expect(health.status).toBe(503);
      expect((await health.json()).error).toMatchObject({ code: 'engine_dead', message: expect.stringMatching(/Aborted\(\)/) });

      model.forward = forward; // a backend does not come back; the engine must not try it again
      const later = await s.client.completions.create({ model: 'demo-tiny', prompt: [3], max_tokens: 2, stream: true }).catch((e) => e);
      expect(later).toBeInstanceOf(OpenAI.InternalServerError);
      expect(failures).toHaveLength(1);
      expect(failures[0]?.code).toBe('E_BACKEND');
      expect(s.serving.engine.stats()).toMatchObject({ waiting: 0, running: 0 });
    } finally {
      model.forward = forward;
    }
  });
});
