/**
 * The high-level API (generate, generateStream, Chat, waitForDaemon, the
 * default-model rule) against the TypeScript test daemon, with the client's
 * real lease discovery and gRPC path.
 */
import assert from "node:assert/strict";
import {
  Chat,
  DaemonWaitTimeoutError,
  generate,
  generateStream,
  ModeldClient,
  ModelNotFoundError,
  NoDefaultModelError,
  TimeoutError,
  waitForDaemon,
} from "../mod.ts";
import { crashingDenoWarning, warnIfCrashingDeno } from "../lib/deno_version.ts";
import { startTestDaemon } from "../testing.ts";

const REPLY = "The sky is blue because air scatters blue light.";
const models = { smol: "weights" };

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function count(daemon: { requests: { method: string }[] }, method: string): number {
  return daemon.requests.filter((r) => r.method === method).length;
}

Deno.test("generate: one call returns the text and usage, by store name, and closes its session", async () => {
  await using daemon = await startTestDaemon({ reply: REPLY, models });
  const { text, usage } = await generate({
    dataRoot: daemon.dataRoot,
    model: "smol",
    system: "Be terse.",
    prompt: "Why is the sky blue?",
    maxTokens: 64,
  });
  assert.equal(text, REPLY);
  assert.equal(usage.stopReason, "end");
  assert.ok(usage.chunks > 1);
  assert.equal(usage.reusedTokens, 0);
  assert.equal(usage.prefixPrefilledTokens, "Be terse.".length);
  assert.equal(usage.suffixTokens, "Why is the sky blue?".length);
  assert.equal(usage.prefilledTokens, usage.prefixPrefilledTokens + usage.suffixTokens);
  assert.equal(usage.promptTokens, usage.prefilledTokens);
  assert.equal(daemon.openSessions, 0);
  assert.equal(count(daemon, "CloseSession"), 1);
});

Deno.test("generate: stop reason max_tokens when the cap is reached; a ModelRef with a path works", async () => {
  await using daemon = await startTestDaemon();
  const path = `${daemon.dataRoot}/m.gguf`;
  await Deno.writeTextFile(path, "weights");
  const { text, usage } = await generate({
    dataRoot: daemon.dataRoot,
    model: { name: "m", path },
    prompt: "hi",
    maxTokens: 3,
  });
  assert.equal(text, "xxx");
  assert.deepEqual([usage.chunks, usage.stopReason], [3, "max_tokens"]);
});

Deno.test("generate: sampling options reach the daemon", async () => {
  let seen: unknown;
  await using daemon = await startTestDaemon({
    models,
    reply: ({ config }) => ((seen = config), "ok"),
  });
  await generate({
    dataRoot: daemon.dataRoot,
    model: "smol",
    prompt: "hi",
    maxTokens: 7,
    temperature: 0.5,
    topP: 0.25,
    topK: 3,
    seed: 42,
  });
  const cfg = seen as Record<string, unknown>;
  assert.deepEqual(
    [cfg.maxTokens, cfg.temperature, cfg.topP, cfg.topK, cfg.seed],
    [7, 0.5, 0.25, 3, 42n],
  );
});

Deno.test("generate: without a model, the only stored model; several or none is NoDefaultModelError", async () => {
  await using one = await startTestDaemon({ reply: "hi", models });
  assert.equal((await generate({ dataRoot: one.dataRoot, prompt: "x" })).text, "hi");

  await using two = await startTestDaemon({ models: { alpha: "a", beta: "b" } });
  const err = await generate({ dataRoot: two.dataRoot, prompt: "x" }).catch((e) => e);
  assert.ok(err instanceof NoDefaultModelError, String(err));
  assert.deepEqual(err.stored, ["alpha", "beta"]);
  assert.match(err.message, /store has 2 \(alpha, beta\); name a model/);

  await using none = await startTestDaemon();
  await assert.rejects(
    () => generate({ dataRoot: none.dataRoot, prompt: "x" }),
    (e: Error) => e instanceof NoDefaultModelError && /store is empty/.test(e.message),
  );
});

Deno.test("generate: an existing client is used and kept open; an unknown model is ModelNotFoundError", async () => {
  await using daemon = await startTestDaemon({ reply: "ok", models });
  await using client = new ModeldClient({ dataRoot: daemon.dataRoot });
  assert.equal((await generate({ client, model: "smol", prompt: "a" })).text, "ok");
  assert.equal((await generate({ client, model: "smol", prompt: "b" })).text, "ok");
  assert.equal(daemon.connections, 1);
  await assert.rejects(() => generate({ client, model: "nope", prompt: "a" }), ModelNotFoundError);
});

Deno.test("generate: timeoutMs bounds the whole call (TimeoutError); a signal ends it quietly as cancelled", async () => {
  await using daemon = await startTestDaemon({ models, chunkDelayMs: 20 });
  await assert.rejects(
    () =>
      generate({
        dataRoot: daemon.dataRoot,
        model: "smol",
        prompt: "a",
        maxTokens: 1000,
        timeoutMs: 150,
      }),
    TimeoutError,
  );
  for (let i = 0; i < 100 && daemon.openSessions > 0; i++) await delay(10);
  const before = daemon.decodesCancelled;
  const controller = new AbortController();
  const stream = generateStream({
    dataRoot: daemon.dataRoot,
    model: "smol",
    prompt: "a",
    maxTokens: 1000,
    signal: controller.signal,
  });
  let seen = 0;
  for await (const _ of stream) if (++seen === 2) controller.abort();
  assert.equal(stream.usage.stopReason, "cancelled");
  for (let i = 0; i < 100 && daemon.decodesCancelled === before; i++) await delay(10);
  assert.equal(daemon.decodesCancelled, before + 1);
  assert.equal(daemon.openSessions, 0);
});

Deno.test("generateStream: break cancels the decode on the daemon and closes the session", async () => {
  await using daemon = await startTestDaemon({ models, chunkDelayMs: 20 });
  const stream = generateStream({
    dataRoot: daemon.dataRoot,
    model: "smol",
    prompt: "a",
    maxTokens: 1000,
  });
  let seen = 0;
  for await (const _ of stream) if (++seen === 3) break;
  assert.equal(stream.usage.stopReason, "cancelled");
  for (let i = 0; i < 100 && daemon.decodesCancelled === 0; i++) await delay(10);
  assert.equal(daemon.decodesCancelled, 1);
  assert.equal(daemon.openSessions, 0);
  assert.throws(() => stream[Symbol.asyncIterator](), /single-use/);
});

Deno.test("generateStream: textStream() is a ReadableStream<string> of the text; cancelling it cancels the decode", async () => {
  await using daemon = await startTestDaemon({ reply: REPLY, models, chunkDelayMs: 5 });
  const stream = generateStream({ dataRoot: daemon.dataRoot, model: "smol", prompt: "a" });
  let text = "";
  await stream.textStream().pipeTo(new WritableStream({ write: (s) => void (text += s) }));
  assert.equal(text, REPLY);
  assert.equal(stream.usage.stopReason, "end");

  const long = generateStream({
    dataRoot: daemon.dataRoot,
    model: "smol",
    prompt: "a",
    maxTokens: 1000,
  });
  const reader = long.textStream().getReader();
  await reader.read();
  await reader.cancel();
  for (let i = 0; i < 100 && daemon.decodesCancelled === 0; i++) await delay(10);
  assert.equal(daemon.decodesCancelled, 1);
  for (let i = 0; i < 100 && daemon.openSessions > 0; i++) await delay(10);
  assert.equal(daemon.openSessions, 0);
});

Deno.test("Chat: one warm session across turns, history appended, the prefix reused", async () => {
  await using daemon = await startTestDaemon({
    models,
    reply: ({ prompt }) => `echo ${prompt.suffix.length}`,
  });
  {
    await using chat = new Chat({
      dataRoot: daemon.dataRoot,
      model: "smol",
      system: "You are terse.",
    });
    const first = await chat.send("Hello");
    assert.equal(first.usage.reusedTokens, 0);
    const second = await chat.send("Again");
    assert.equal(second.usage.reusedTokens, "You are terse.".length);
    assert.deepEqual(chat.messages.map((m) => m.role), [
      "system",
      "user",
      "assistant",
      "user",
      "assistant",
    ]);
    assert.equal(chat.messages[2].content, first.text);
    assert.equal(count(daemon, "OpenSession"), 1);
    assert.equal(count(daemon, "EnsurePrefix"), 2);
    assert.equal(daemon.openSessions, 1);
  }
  assert.equal(daemon.openSessions, 0);
});

Deno.test("Chat: an interrupted reply is not kept, nor its question; the next turn works", async () => {
  await using daemon = await startTestDaemon({ models, chunkDelayMs: 10 });
  await using chat = new Chat({ dataRoot: daemon.dataRoot, model: "smol", maxTokens: 1000 });
  let seen = 0;
  const stream = chat.stream("tell me everything");
  for await (const _ of stream) if (++seen === 2) break;
  assert.equal(stream.usage.stopReason, "cancelled");
  assert.equal(chat.messages.length, 0);
  const done = await chat.send("short", { maxTokens: 2 });
  assert.deepEqual([done.text, done.usage.stopReason], ["xx", "max_tokens"]);
  assert.deepEqual(chat.messages.map((m) => m.content), ["short", "xx"]);
});

Deno.test("Chat: tools reach the prefix; the reply's tool calls join the history; tool results continue", async () => {
  let tools = "";
  await using daemon = await startTestDaemon({
    models,
    reply: ({ prompt }) =>
      prompt.suffix.includes("18°C") ? "It is 18°C in Oslo." : {
        tokens: [],
        toolCalls: [{
          id: "call_1",
          type: "function",
          function: { name: "weather", arguments: '{"city":"Oslo"}' },
        }],
      },
  });
  await using chat = new Chat({
    dataRoot: daemon.dataRoot,
    model: "smol",
    tools: [{ name: "weather", description: "Weather now", parameters: { type: "object" } }],
  });
  const first = await chat.send("Weather in Oslo?");
  assert.equal(first.toolCalls[0].function?.name, "weather");
  const call = chat.messages[1];
  assert.deepEqual(call.toolCalls, [{
    id: "call_1",
    name: "weather",
    arguments: '{"city":"Oslo"}',
  }]);
  const second = await chat.send({ role: "tool", toolCallId: "call_1", content: "18°C" });
  assert.equal(second.text, "It is 18°C in Oslo.");
  const prefix = daemon.requests.find((r) => r.method === "EnsurePrefix");
  tools = JSON.stringify(prefix);
  assert.match(tools, /weather/);
});

Deno.test("waitForDaemon: resolves once a daemon starts; times out naming the last state", async () => {
  const root = await Deno.makeTempDir();
  try {
    const waiting = waitForDaemon({ dataRoot: root, timeoutMs: 5_000, intervalMs: 20 });
    await delay(150);
    await using daemon = await startTestDaemon({ dataRoot: root });
    const ready = await waiting;
    assert.equal(ready.state, "running");
    assert.equal(ready.instanceId, daemon.instanceId);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
  const empty = await Deno.makeTempDir();
  try {
    const err = await waitForDaemon({ dataRoot: empty, timeoutMs: 100, intervalMs: 20 }).catch((
      e,
    ) => e);
    assert.ok(err instanceof DaemonWaitTimeoutError, String(err));
    assert.ok(err instanceof TimeoutError);
    assert.equal(err.lastState, "not_running");
    assert.match(err.message, /not ready after 100 ms.*--data-root/);
  } finally {
    await Deno.remove(empty, { recursive: true });
  }
});

Deno.test("waitForDaemon: an abort stops the wait with AbortedError", async () => {
  const root = await Deno.makeTempDir();
  try {
    const controller = new AbortController();
    const waiting = waitForDaemon({ dataRoot: root, signal: controller.signal, intervalMs: 20 });
    await delay(50);
    controller.abort();
    await assert.rejects(waiting, (e: Error) => e.name === "AbortedError");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("Deno 2.9.4 to 2.9.6 get one warning (not an error); other versions none", () => {
  assert.equal(crashingDenoWarning("2.9.3"), undefined);
  assert.equal(crashingDenoWarning("2.9.7"), undefined);
  assert.equal(crashingDenoWarning("2.10.4"), undefined);
  for (const v of ["2.9.4", "2.9.5", "2.9.6"]) {
    assert.match(crashingDenoWarning(v)!, /denoland\/deno#36788.*use Deno 2\.9\.3/);
  }
  const printed: string[] = [];
  assert.equal(warnIfCrashingDeno("2.9.3", (m) => printed.push(m)), false);
  assert.equal(warnIfCrashingDeno("2.9.5", (m) => printed.push(m)), true);
  assert.equal(warnIfCrashingDeno("2.9.5", (m) => printed.push(m)), false);
  assert.equal(printed.length, 1);
});

Deno.test("Chat: a session the daemon dropped (idle reaper) is reopened and the turn replayed", async () => {
  await using daemon = await startTestDaemon({ models, reply: "ok", idleTtlMs: 100 });
  await using chat = new Chat({ dataRoot: daemon.dataRoot, model: "smol", system: "Be terse." });
  assert.equal((await chat.send("one")).text, "ok");
  for (let i = 0; i < 100 && (await statusOf(daemon.dataRoot)) !== "Idle"; i++) await delay(20);
  const second = await chat.send("two");
  assert.equal(second.text, "ok");
  assert.equal(chat.messages.length, 5);
  assert.equal(count(daemon, "OpenSession"), 2);
});

async function statusOf(dataRoot: string): Promise<string> {
  await using client = new ModeldClient({ dataRoot });
  return (await client.status()).state;
}
