/**
 * The high-level API (generate, generateStream, Chat) against the llama.cpp
 * daemon with SmolLM2-135M-Instruct (`deno task model`): real tokens, real
 * prefix reuse, a real cancel.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { serve } from "../../daemon.ts";
import { Chat, generate, generateStream, ModeldClient } from "../../mod.ts";

const SMOL = join(Deno.cwd(), ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf");
const THREADS = 1;

async function setup() {
  try {
    await Deno.stat(SMOL);
  } catch {
    throw new Error(`${SMOL} is missing: run \`deno task model\` first`);
  }
  await Deno.mkdir(".cache/tmp/daemon", { recursive: true });
  const root = await Deno.makeTempDir({ dir: join(Deno.cwd(), ".cache/tmp/daemon") });
  const daemon = await serve({ dataRoot: root, threads: THREADS, idleTtlMs: 0 });
  // The model in the store, so `model` can be a name (and the default).
  await using client = new ModeldClient({ dataRoot: root });
  await client.pushModelFile(SMOL, { name: "smollm2" });
  return {
    root,
    daemon,
    async [Symbol.asyncDispose]() {
      await daemon.close();
      await Deno.remove(root, { recursive: true });
    },
  };
}

Deno.test("llama.cpp: generate() answers greedily by store name and by default; usage is real", async () => {
  await using env = await setup();
  const { text, usage } = await generate({
    dataRoot: env.root,
    model: "smollm2",
    prompt: "What is the capital of France? Answer in one word.",
    maxTokens: 16,
    temperature: 0,
  });
  assert.match(text, /Paris/);
  assert.ok(usage.promptTokens > 5, JSON.stringify(usage));
  assert.ok(usage.chunks >= 1 && usage.chunks <= 16);
  assert.ok(["end", "max_tokens"].includes(usage.stopReason));
  const again = await generate({ dataRoot: env.root, prompt: "Say hi.", maxTokens: 2 });
  assert.equal(again.usage.stopReason, again.usage.chunks >= 2 ? "max_tokens" : "end");
});

Deno.test("llama.cpp: Chat reuses the prefix across turns; break cancels a real decode", async () => {
  await using env = await setup();
  {
    await using chat = new Chat({
      dataRoot: env.root,
      model: "smollm2",
      system: "You are a helpful assistant. Answer briefly.",
      temperature: 0,
      maxTokens: 24,
    });
    const first = await chat.send("What is 2+2?");
    assert.equal(first.usage.reusedTokens, 0);
    const second = await chat.send("And 3+3?");
    assert.ok(second.usage.reusedTokens > 0, JSON.stringify(second.usage));
    assert.equal(chat.messages.length, 5);
  }
  const stream = generateStream({
    dataRoot: env.root,
    model: "smollm2",
    prompt: "Write a long story about a lighthouse.",
    maxTokens: 400,
  });
  let seen = 0;
  for await (const _ of stream) if (++seen === 3) break;
  assert.equal(stream.usage.stopReason, "cancelled");
  assert.equal(env.daemon.openSessions, 0);
});
