/**
 * The CLI against the real Go transport server (our Go peer over the real
 * memory and slot services), run as a user would: a child Deno process
 * granted only `--allow-read=<data root> --allow-net=127.0.0.1`.
 */
import assert from "node:assert/strict";
import { PEER_VERSION, startPeer, waitFor } from "./peers.ts";

const cli = new URL("../../cli.ts", import.meta.url).pathname;

function spawnCli(dataRoot: string, args: string[], stdin: "null" | "piped" = "null") {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-prompt",
      `--allow-read=${dataRoot}`,
      "--allow-net=127.0.0.1",
      cli,
      "--data-root",
      dataRoot,
      ...args,
    ],
    stdin,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
}

async function runCli(dataRoot: string, args: string[], input?: string) {
  const child = spawnCli(dataRoot, args, input === undefined ? "null" : "piped");
  if (input !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(input));
    await writer.close();
  }
  const out = await child.output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

const model = ["--model", "m", "--path", "/models/m.gguf", "--ctx", "4096"];

Deno.test(`[peer ${PEER_VERSION} memory] cli generate streams the Go server's decode`, async () => {
  await using peer = await startPeer({ mode: "memory" });
  const res = await runCli(peer.dataRoot, ["generate", ...model, "--max-tokens", "3", "hi"]);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stdout.trim(), "xxx", "the memory service decodes one x per token");
  const json = await runCli(peer.dataRoot, [
    "generate",
    ...model,
    "--max-tokens",
    "2",
    "--json",
    "hi",
  ]);
  assert.equal(json.code, 0, json.stderr);
  const lines = json.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(lines.slice(0, 2).map((l) => l.text), ["x", "x"]);
  assert.equal(lines.at(-1).done, true);
});

Deno.test(`[peer ${PEER_VERSION} slot] cli chat reuses the prefix on the second turn`, async () => {
  await using peer = await startPeer({ mode: "slot" });
  const res = await runCli(
    peer.dataRoot,
    ["chat", ...model, "--system", "You are terse.", "--stats", "--max-tokens", "2"],
    "first question\nsecond question\n",
  );
  assert.equal(res.code, 0, res.stderr);
  const stats = [...res.stderr.matchAll(/turn (\d+): reused (\d+) tokens/g)].map((m) =>
    Number(m[2])
  );
  assert.equal(stats.length, 2, res.stderr);
  assert.equal(stats[0], 0);
  assert.ok(stats[1] > 0, `turn 2 reused ${stats[1]} tokens`);
});

Deno.test(`[peer ${PEER_VERSION} slot] cli status --json reads the real slot`, async () => {
  await using peer = await startPeer({ mode: "slot" });
  const res = await runCli(peer.dataRoot, ["status", "--json"]);
  assert.equal(res.code, 0, res.stderr);
  const status = JSON.parse(res.stdout);
  assert.equal(status.state, "running");
  assert.equal(status.instanceId, peer.instanceId);
  assert.equal(status.endpoint, peer.endpoint);
});

Deno.test(`[peer ${PEER_VERSION} slot] cli generate: SIGINT cancels the Go decode and closes the session`, async () => {
  await using peer = await startPeer({ mode: "slot" });
  const child = spawnCli(peer.dataRoot, [
    "generate",
    "--model",
    "slow-decode",
    "--path",
    "/models/slow.gguf",
    "--max-tokens",
    "1000",
    "go",
  ]);
  const reader = child.stdout.getReader();
  let seen = "";
  while (!seen.includes("xxx")) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += new TextDecoder().decode(value);
  }
  child.kill("SIGINT");
  reader.releaseLock();
  const [status] = await Promise.all([child.status, child.stdout.cancel(), child.stderr.cancel()]);
  assert.equal(status.code, 130);
  await peer.waitForLog((e) => e.event === "decode cancelled");
  await waitFor(
    async () => (await peer.log()).find((e) => e.layer === "svc" && e.method === "CloseSession"),
    5_000,
    "the CLI to close its session",
  );
});
