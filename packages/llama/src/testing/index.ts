/**
 * @packageDocumentation
 * @lora/llama/testing: fixtures for tests of code that uses @lora/llama (Node only): generated
 * tokenizers in the Hugging Face file formats, an in-memory FileSource, and a local server that
 * speaks the Hugging Face Hub's download protocol.
 */
export {
  type HubFileBody,
  type HubRepoSpec,
  type HubRequestRecord,
  type HubServer,
  type HubServerOptions,
  startHubServer,
} from './hub-server.js';
export { textFileSource } from './memory-source.js';
export { testAdapterFiles } from './peft-fixture.js';
export { makeTestTokenizer, type TestTokenizerOptions, type TestTokenizerStyle, testTokenizerFiles } from './tokenizer-fixture.js';
