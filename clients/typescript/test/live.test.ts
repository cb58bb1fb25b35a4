// Live tests against a running `tokenwire serve` (started by tests/clients/test_typescript_client.py):
// TOKENWIRE_TARGET is its gRPC address, TOKENWIRE_API_KEY the key it requires.
import assert from "node:assert/strict";
import { test } from "node:test";

import { TokenwireClient, TokenwireError } from "../src/index.js";

const target = process.env.TOKENWIRE_TARGET ?? "";
const apiKey = process.env.TOKENWIRE_API_KEY ?? "";
assert.ok(target && apiKey, "TOKENWIRE_TARGET and TOKENWIRE_API_KEY must be set");

const client = new TokenwireClient(target, { apiKey, timeoutMs: 240_000 });
const CAPITAL = [
  { role: "system", content: "Answer in one word." },
  { role: "user", content: "What is the capital of France?" },
];
// SmolLM2's end-of-generation tokens, banned so that a generation runs until it is cancelled.
const BAN_END = { 0: -100, 2: -100, 4: -100 };

async function defaultEngineId(): Promise<string> {
  const engines = await client.listEngines();
  const engine = engines.find((e) => e.isDefault) ?? engines[0];
  assert.ok(engine, "the server lists no engine");
  return engine.engineId;
}

test("health check says SERVING", async () => {
  assert.equal(await new TokenwireClient(target).health(), "SERVING");
});

test("lists the engines", async () => {
  const engines = await client.listEngines();
  assert.ok(engines.length >= 1);
  assert.ok(engines.some((e) => e.isDefault));
});

test("streams a chat generation token by token", async () => {
  const deltas: string[] = [];
  let finish = 0;
  for await (const delta of client.generate({
    input: { case: "chat", value: { messages: CAPITAL } }, sampling: { temperature: 0 }, maxTokens: 24,
  })) {
    deltas.push(delta.text);
    if (delta.finishReason) finish = delta.finishReason;
  }
  assert.ok(deltas.length > 1, `one message per delta, got ${deltas.length}`);
  assert.match(deltas.join(""), /Paris/);
  assert.notEqual(finish, 0, "the last message carries the finish reason");
});

test("cancelling mid-way frees the sequence", async () => {
  const engineId = await defaultEngineId();
  const abort = new AbortController();
  let received = 0;
  await assert.rejects(async () => {
    for await (const delta of client.generate({
      input: { case: "prompt", value: "Once upon a time" }, maxTokens: 3000, sampling: { temperature: 0, logitBias: BAN_END },
    }, { signal: abort.signal })) {
      if (delta.text) received += 1;
      if (received === 3) {
        const busy = await client.getEngine(engineId);
        assert.equal(busy.scheduler?.activeSequences, 1, "the generation holds a sequence");
        abort.abort();
      }
    }
  }, (error: unknown) => error instanceof TokenwireError && error.status === "CANCELLED");
  assert.equal(received, 3);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const engine = await client.getEngine(engineId);
    if (engine.scheduler?.activeSequences === 0) break;
    assert.ok(Date.now() < deadline, "the server still runs the cancelled sequence after 30 s");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
});

test("INVALID_ARGUMENT carries the field violation", async () => {
  const error = await collectError(client.generate({ input: { case: "prompt", value: "hi" }, sampling: { topP: 2 } }));
  assert.equal(error.status, "INVALID_ARGUMENT");
  assert.ok(error.violations.some((v) => v.field === "sampling.top_p"),
            JSON.stringify(error.violations));
});

test("UNAUTHENTICATED without the key, success with it", async () => {
  const stranger = new TokenwireClient(target);
  await assert.rejects(stranger.listEngines(), (error: unknown) =>
    error instanceof TokenwireError && error.status === "UNAUTHENTICATED" && error.reason !== "");
  assert.ok((await client.listEngines()).length >= 1);
});

async function collectError(stream: AsyncIterable<unknown>): Promise<TokenwireError> {
  try {
    for await (const _ of stream) { /* drain */ }
  } catch (error) {
    assert.ok(error instanceof TokenwireError, String(error));
    return error;
  }
  assert.fail("the call succeeded");
}
