/**
 * Every file in examples/ runs as its header says, in a child Deno process
 * granted only `--allow-read=<data root> --allow-net=127.0.0.1` (plus read on
 * a pushed file), against the test daemon.
 */
import assert from "node:assert/strict";
import { startTestDaemon } from "../testing.ts";

const REPO = new URL("../", import.meta.url).pathname;

async function example(
  name: string,
  args: string[],
  options: { read: string[]; stdin?: string },
) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-prompt",
      `--allow-read=${options.read.join(",")}`,
      "--allow-net=127.0.0.1",
      `examples/${name}`,
      ...args,
    ],
    cwd: REPO,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const out = await child.output();
  const res = {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
  assert.equal(res.code, 0, `${name}: ${res.stderr}`);
  return res;
}

Deno.test("examples/generate.ts: one-off generation with the store's only model", async () => {
  await using daemon = await startTestDaemon({ models: { smollm2: "GGUF" }, reply: "Rayleigh." });
  const root = daemon.dataRoot;
  const res = await example("generate.ts", [root], { read: [root] });
  assert.equal(res.stdout, "Rayleigh.\n");
  assert.match(res.stderr, /stopped: end/);
  assert.equal(daemon.openSessions, 0);
});

Deno.test("examples/stream.ts: streams the text to stdout", async () => {
  await using daemon = await startTestDaemon({
    models: { smollm2: "GGUF" },
    reply: "Once upon a time, a daemon streamed.",
    chunkDelayMs: 2,
  });
  const root = daemon.dataRoot;
  const res = await example("stream.ts", [root, "Tell", "me"], { read: [root] });
  assert.equal(res.stdout, "Once upon a time, a daemon streamed.\n");
  assert.match(res.stderr, /stopped: end/);
});

Deno.test("examples/chat.ts: turns from stdin on one warm session", async () => {
  await using daemon = await startTestDaemon({
    models: { smollm2: "GGUF" },
    reply: ({ prompt }) => `(${prompt.suffix.length} chars of conversation)`,
  });
  const root = daemon.dataRoot;
  const res = await example("chat.ts", [root], { read: [root], stdin: "Hi\nAgain\n" });
  assert.match(res.stdout, /^> Hi\n\(\d+ chars of conversation\)\n> Again\n/);
  assert.match(res.stderr, /reused 0 tokens, 3 messages\]\n\[reused 14 tokens, 5 messages\]/);
  assert.equal(daemon.requests.filter((r) => r.method === "OpenSession").length, 1);
});

Deno.test("examples/embeddings.ts: vectors and their similarity", async () => {
  await using daemon = await startTestDaemon({
    models: { bge: "GGUF" },
    embedding: (text) => [text.includes("cat") ? 1 : 0, text.includes("Stock") ? 1 : 0, 0.1],
  });
  const root = daemon.dataRoot;
  const res = await example("embeddings.ts", [root, "bge"], { read: [root] });
  assert.match(res.stdout, /^3 dimensions\nsimilar: +1\.000\nunrelated: +0\.\d+\n$/);
});

Deno.test("examples/tools.ts: runs the tool the model calls and sends the result back", async () => {
  await using daemon = await startTestDaemon({
    models: { smollm2: "GGUF" },
    reply: ({ prompt }) =>
      prompt.suffix.includes('"celsius":18') ? "It is 18°C and clear in Oslo." : {
        tokens: [],
        toolCalls: [{
          id: "call_1",
          type: "function",
          function: { name: "weather", arguments: '{"city":"Oslo"}' },
        }],
      },
  });
  const root = daemon.dataRoot;
  const res = await example("tools.ts", [root], { read: [root] });
  assert.equal(
    res.stdout,
    'tool weather({"city":"Oslo"}) -> {"city":"Oslo","celsius":18,"sky":"clear"}\n' +
      "It is 18°C and clear in Oslo.\n",
  );
});

Deno.test("examples/push.ts: pushes a file with progress, then lists the store", async () => {
  await using daemon = await startTestDaemon();
  const root = daemon.dataRoot;
  const file = `${await Deno.makeTempDir()}/tiny.gguf`;
  await Deno.writeFile(file, new Uint8Array(5 * 1024 * 1024).fill(7));
  const res = await example("push.ts", [root, file, "tiny"], { read: [root, file] });
  const lines = res.stdout.trim().split("\n");
  assert.ok(lines.some((l) => /\(80%\)$/.test(l)), res.stdout);
  assert.ok(lines.includes("pushed 5242880 of 5242880 bytes (100%)"), res.stdout);
  assert.ok(lines.includes("stored tiny: 5242880 bytes"), res.stdout);
  assert.equal(lines.at(-1), "tiny\t5242880 bytes");
});
