/**
 * Every public client call against the TypeScript test daemon, in both of its
 * version modes, through the real lease, discovery and gRPC path.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  available,
  backend,
  buildContext,
  type ChatMessage,
  ContextOverflowError,
  DaemonNotRunningError,
  DaemonTooOldError,
  DigestMismatchError,
  InvalidArgumentError,
  ModelBusyError,
  ModeldClient,
  ModelLoadFailedError,
  ModelNotFoundError,
  probe,
  serveableBackend,
  Session,
  SessionClosedError,
  setDataRoot,
  snapshotDir,
  StaleFenceError,
} from "../mod.ts";
import { startTestDaemon } from "../testing.ts";
import { dial } from "../lib/transport.ts";
import { modelFile } from "../lib/testing/_test_support.ts";

const model = { name: "m", type: "llama", path: await modelFile() };

Deno.test("[test daemon v0.36.0] round trip: cold then warm prefix, suffix, decode, explain, close", async () => {
  await using daemon = await startTestDaemon();
  await using client = new ModeldClient({ dataRoot: daemon.dataRoot });
  await using session = await client.openSession(model, { config: { numCtx: 100 } });
  const cold = await session.ensurePrefix({ text: "hello" });
  assert.deepEqual([cold.reusedTokens, cold.prefilledTokens, cold.prefixTokens], [0, 5, 5]);
  const warm = await session.ensurePrefix({ text: "hello" });
  assert.deepEqual([warm.reusedTokens, warm.prefilledTokens], [5, 0]);
  await session.prefillSuffix({ text: " world" });
  const out = await session.decode({ maxTokens: 3 }).collect();
  assert.equal(out.chunks, 3);
  assert.equal((await session.explainContext()).residentTokens, 11);
  await session.close();
  assert.ok(session.closed);
  await session.close(); // idempotent
  await assert.rejects(() => session.ensurePrefix({ text: "x" }), InvalidArgumentError);
});

Deno.test("[test daemon v0.32.3] the daemon's session_closed reaches the caller typed", async () => {
  await using daemon = await startTestDaemon({ version: "v0.32.3" });
  await using client = new ModeldClient({ dataRoot: daemon.dataRoot });
  const session = await client.openSession(model, { config: { numCtx: 100 } });
  // Close the handle on the daemon through a second Session on its own connection.
  using conn = dial(daemon.endpoint, daemon.instanceId);
  await new Session(conn, session.handle).close();
  await assert.rejects(() => session.ensurePrefix({ text: "x" }), SessionClosedError);
  await session.close(); // a session the daemon already dropped counts as closed
});

Deno.test("[test daemon v0.36.0] buildContext turns stay warm across turns", async () => {
  await using daemon = await startTestDaemon({ reply: "four" });
  await using client = new ModeldClient({ dataRoot: daemon.dataRoot });
  await using session = await client.openSession(model, { config: { numCtx: 4096 } });
  const history: ChatMessage[] = [
    { role: "system", content: "You are terse. 日本語 ✓" },
    { role: "user", content: "2+2?" },
  ];
  let ctx = await buildContext(history);
  assert.equal((await session.ensurePrefix(ctx.prefix)).reusedTokens, 0);
  await session.prefillSuffix(ctx.suffix);
  const first = await session.decode({ maxTokens: 8 }).collect();
  assert.equal(first.text, "four");
  history.push({ role: "assistant", content: first.text }, { role: "user", content: "3+3?" });
  ctx = await buildContext(history);
  const second = await session.ensurePrefix(ctx.prefix);
  assert.ok(second.reusedTokens > 0, "the stable system prompt is reused");
  assert.equal(second.prefilledTokens, 0);
});

Deno.test("[test daemon v0.36.0] break out of decode cancels it on the daemon", async () => {
  await using daemon = await startTestDaemon({ chunkDelayMs: 20 });
  await using client = new ModeldClient({ dataRoot: daemon.dataRoot });
  await using session = await client.openSession(model, { config: { numCtx: 4096 } });
  await session.ensurePrefix({ text: "p" });
  let seen = 0;
  for await (const _ of session.decode({ maxTokens: 1000 })) {
    if (++seen === 3) break;
  }
  assert.equal(seen, 3);
  for (let i = 0; i < 100 && daemon.decodesCancelled === 0; i++) await delay(10);
  assert.equal(daemon.decodesCancelled, 1);
  // The slot is free again: the same session can decode.
  assert.equal((await session.decode({ maxTokens: 2 }).collect()).chunks, 2);
});

Deno.test("[test daemon v0.36.0] an aborted decode ends quietly; a timeout throws", async () => {
  await using daemon = await startTestDaemon({ chunkDelayMs: 20 });
  await using client = new ModeldClient({ dataRoot: daemon.dataRoot });
  await using session = await client.openSession(model, { config: { numCtx: 4096 } });
  const controller = new AbortController();
  let seen = 0;
  for await (const _ of session.decode({ maxTokens: 1000 }, { signal: controller.signal })) {
    if (++seen === 2) controller.abort();
  }
  assert.equal(seen, 2);
  await assert.rejects(
    () => session.decode({ maxTokens: 1000 }, { timeoutMs: 60 }).collect(),
    (e: Error) => e.name === "TimeoutError",
  );
});

Deno.test("[test daemon v0.36.0] overflow carries its counts (unary and mid-stream)", async () => {
  await using daemon = await startTestDaemon();
  await using client = new ModeldClient({ dataRoot: daemon.dataRoot });
  await using session = await client.openSession(model, { config: { numCtx: 4 } });
  const err = await session.ensurePrefix({ text: "too many tokens" }).catch((e) => e);
  assert.ok(err instanceof ContextOverflowError);
  assert.equal(err.stage, "prefix");
  assert.equal(err.numCtx, 4);
  assert.equal(err.additionalTokens, 15);
  await session.ensurePrefix({ text: "abc" });
  const stream = await session.decode({ maxTokens: 5 }).collect().catch((e) => e);
  assert.ok(stream instanceof ContextOverflowError);
  assert.equal(stream.stage, "decode");
});

Deno.test("[test daemon v0.36.0] slot: busy, switch with LoadModel retry, status, unload", async () => {
  await using daemon = await startTestDaemon();
  await using client = new ModeldClient({ dataRoot: daemon.dataRoot });
  const a = await client.loadModel(model, { config: { numCtx: 64 } });
  assert.ok(a.generation > 0n);
  const status = await client.status();
  assert.equal(status.state, "Ready");
  assert.equal(status.active?.generation, a.generation);
  const held = await client.openSession(model, { config: { numCtx: 64 } });
  await assert.rejects(() => client.loadModel({ ...model, name: "b" }), ModelBusyError);
  await held.close();
  // A different model while "m" sits idle: the client loads it and retries.
  await using b = await client.openSession({ ...model, name: "b" }, { config: { numCtx: 64 } });
  assert.equal((await client.status()).active?.modelName, "b");
  await b.close();
  await client.unloadModel({ expectedGeneration: (await client.status()).active!.generation });
  assert.equal((await client.status()).state, "Empty");
});

Deno.test("[test daemon v0.36.0] snapshot and restore", async () => {
  await using daemon = await startTestDaemon();
  await using client = new ModeldClient({ dataRoot: daemon.dataRoot });
  await using session = await client.openSession(model, { config: { numCtx: 100 } });
  await session.ensurePrefix({ text: "hello" });
  await session.prefillSuffix({ text: " world" });
  const snap = await session.snapshot();
  assert.equal(snap.residentTokens, 11);
  await session.ensurePrefix({ text: "other" });
  await session.restore(snap);
  assert.equal((await session.explainContext()).residentTokens, 11);
});

Deno.test("[test daemon v0.36.0] describe, embed, model store", async () => {
  await using daemon = await startTestDaemon({
    embedding: () => [1, 2.5, -3],
    models: { a: "weights-a" },
  });
  await using client = new ModeldClient({ dataRoot: daemon.dataRoot });
  const info = await client.describe(model, { config: { numCtx: 512 } });
  assert.equal(info.effectiveContext, 512);
  assert.deepEqual(await client.embed(model, "hi"), [1, 2.5, -3]);
  const listed = await client.listModels();
  assert.deepEqual(listed.map((m) => [m.name, m.sizeBytes]), [["a", 9n]]);
  const bytes = new Uint8Array(5 * 1024 * 1024 + 7).map((_, i) => i % 13);
  const progress: number[] = [];
  const pushed = await client.pushModel(bytes, {
    name: "big",
    onProgress: (p) => progress.push(p.sentBytes),
  });
  assert.deepEqual([pushed.alreadyPresent, pushed.bytesWritten], [false, BigInt(bytes.length)]);
  assert.deepEqual(progress, [4 * 1024 * 1024, bytes.length]);
  assert.equal((await client.pushModel(bytes, { name: "big" })).alreadyPresent, true);
  await assert.rejects(
    () => client.pushModel(bytes, { name: "bad", digest: "0".repeat(64) }),
    DigestMismatchError,
  );
  await client.removeModel("big");
  await assert.rejects(() => client.removeModel("big"), ModelNotFoundError);
  assert.ok((await client.diskStats()).totalBytes > 0n);
});

Deno.test("[test daemon v0.36.0] re-dials when the lease names a new instance", async () => {
  const dataRoot = await Deno.makeTempDir();
  try {
    await using client = new ModeldClient({ dataRoot });
    const first = await startTestDaemon({ dataRoot });
    await using session = await client.openSession(model, { config: { numCtx: 64 } });
    await first.stop();
    await using second = await startTestDaemon({ dataRoot });
    assert.notEqual(second.instanceId, first.instanceId);
    await assert.rejects(
      () => session.ensurePrefix({ text: "x" }),
      (e: Error) => e instanceof StaleFenceError || (e as { code?: string }).code === "unavailable",
    );
    assert.equal((await session.explainContext()).closed, true); // as Go: never throws
    assert.equal((await client.health()).instanceId, second.instanceId);
  } finally {
    await Deno.remove(dataRoot, { recursive: true });
  }
});

Deno.test("[test daemon v0.36.0] remote endpoints: cached, re-dialled after a restart, closable", async () => {
  await using daemon = await startTestDaemon();
  await using client = new ModeldClient({ dataRoot: await Deno.makeTempDir() });
  const node = await client.endpoint("a", daemon.endpoint);
  assert.equal(node.instanceId, daemon.instanceId);
  assert.equal(await client.endpoint("a", daemon.endpoint), node, "reused while healthy");
  assert.deepEqual(await node.listModels(), []);
  client.closeEndpoint("a");
  client.closeEndpoint("a");
  assert.notEqual(await client.endpoint("a", daemon.endpoint), node);
  await assert.rejects(
    () => client.endpoint("b", "127.0.0.1:1"),
    (e: Error) => e.name === "DaemonUnreachableError",
  );
  await Deno.remove(client.dataRoot, { recursive: true });
});

Deno.test("[test daemon v0.32.3] the eight v0.32.3 RPCs work; newer ones say the daemon is too old", async () => {
  await using daemon = await startTestDaemon({ version: "v0.32.3" });
  await using client = new ModeldClient({ dataRoot: daemon.dataRoot });
  await using session = await client.openSession(model, { config: { numCtx: 100 } });
  await session.ensurePrefix({ text: "hello" });
  assert.equal((await session.decode({ maxTokens: 2 }).collect()).chunks, 2);
  const err = await client.status().catch((e) => e);
  assert.ok(err instanceof DaemonTooOldError);
  assert.equal(err.requiredVersion, "v0.32.4");
  await assert.rejects(() => session.snapshot(), DaemonTooOldError);
  await assert.rejects(
    () => client.listModels(),
    (e: Error) => e instanceof DaemonTooOldError && /v0\.34\.0/.test(e.message),
  );
});

Deno.test("[test daemon v0.32.3] token-less stream errors surface as typed errors", async () => {
  await using daemon = await startTestDaemon({ version: "v0.32.3" });
  await using client = new ModeldClient({ dataRoot: daemon.dataRoot });
  await using session = await client.openSession(model, { config: { numCtx: 4 } });
  await session.ensurePrefix({ text: "abc" });
  await assert.rejects(() => session.decode({ maxTokens: 5 }).collect(), ContextOverflowError);
});

Deno.test("probe states: not running, running, then not running after stop", async () => {
  const dataRoot = await Deno.makeTempDir();
  try {
    assert.equal((await probe({ dataRoot })).state, "not_running");
    await using client = new ModeldClient({ dataRoot });
    await assert.rejects(() => client.health(), DaemonNotRunningError);
    const daemon = await startTestDaemon({ dataRoot });
    const running = await probe({ dataRoot });
    assert.equal(running.state, "running");
    assert.equal(running.health?.instanceId, daemon.instanceId);
    await daemon.kill(); // lease left behind, nothing answers
    assert.equal((await probe({ dataRoot })).state, "unreachable");
  } finally {
    await Deno.remove(dataRoot, { recursive: true });
  }
});

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

Deno.test("[test daemon v0.36.0] pushModelFile, localEndpointAddr and node(target)", async () => {
  await using daemon = await startTestDaemon();
  await using client = new ModeldClient({ dataRoot: daemon.dataRoot });
  const file = `${daemon.dataRoot}/upload.gguf`;
  await Deno.writeFile(file, new Uint8Array(4 * 1024 * 1024 + 1).fill(7));
  const seen: number[] = [];
  const res = await client.pushModelFile(file, {
    name: "up",
    onProgress: (p) => seen.push(p.sentBytes),
  });
  assert.equal(res.bytesWritten, 4194305n);
  assert.deepEqual(seen, [4194304, 4194305]);
  const [listed] = await client.listModels();
  assert.equal(listed.digest, createHash("sha256").update(await Deno.readFile(file)).digest("hex"));
  await assert.rejects(
    () => client.pushModelFile(`${daemon.dataRoot}/missing.gguf`, { name: "x" }),
    InvalidArgumentError,
  );
  assert.equal(await client.localEndpointAddr(), daemon.endpoint);
  assert.equal(await client.node(undefined), client);
  assert.equal(await client.node({ backendId: "local", endpoint: "" }), client);
  const remote = await client.node({ backendId: "n1", endpoint: daemon.endpoint });
  assert.deepEqual((await remote.listModels()).map((m) => m.name), ["up"]);
});

Deno.test("module-level checks follow setDataRoot: available, backend, serveableBackend, snapshotDir", async () => {
  const dataRoot = await Deno.makeTempDir();
  try {
    setDataRoot(dataRoot);
    assert.equal(await available(), false);
    assert.equal(await backend(), "");
    const daemon = await startTestDaemon({ dataRoot, backend: "openvino" });
    assert.equal(await available(), true);
    assert.equal(await backend(), "openvino");
    assert.equal(await serveableBackend(), "openvino");
    await daemon.stop();
    assert.equal(await backend(), "");
    assert.equal(await serveableBackend(), "openvino", "within the 60 s grace window");
    setDataRoot(dataRoot); // resets the grace cache
    assert.equal(await serveableBackend(), "");
    if (
      !Deno.env.get("CONTENOX_WARM_SNAPSHOT_DIR") && !Deno.env.get("CONTENOX_WARM_SNAPSHOT_DISABLE")
    ) {
      assert.equal(snapshotDir("llama"), `${dataRoot}/modeld-snapshots/llama`);
    }
  } finally {
    setDataRoot("");
    await Deno.remove(dataRoot, { recursive: true });
  }
});

Deno.test("[test daemon v0.36.0] a model path that does not exist is model_load_failed, as on the real daemon", async () => {
  await using daemon = await startTestDaemon();
  await using client = new ModeldClient({ dataRoot: daemon.dataRoot });
  const missing = `${daemon.dataRoot}/no-such-model.gguf`;
  const err = await client.openSession({ name: "m", path: missing }).catch((e) => e);
  assert.ok(err instanceof ModelLoadFailedError, String(err));
  assert.match(err.message, /no-such-model\.gguf/);
  assert.equal((await client.status()).state, "Failed");
  // A file that exists loads.
  await Deno.writeTextFile(missing, "GGUF");
  await using session = await client.openSession({ name: "m", path: missing });
  assert.ok(session.handle);
});

Deno.test("[test daemon v0.32.3] a model path that does not exist fails to load there too", async () => {
  await using daemon = await startTestDaemon({ version: "v0.32.3" });
  await using client = new ModeldClient({ dataRoot: daemon.dataRoot });
  await assert.rejects(
    () => client.openSession({ name: "m", path: `${daemon.dataRoot}/none.gguf` }),
    (e: Error) => /none\.gguf/.test(e.message),
  );
});

Deno.test("on Deno 2.9.4-2.9.6 the client warns once at its first connection, and works", async () => {
  await using daemon = await startTestDaemon();
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-prompt",
      `--allow-read=${daemon.dataRoot}`,
      "--allow-net=127.0.0.1",
      new URL("./deno_version_child.ts", import.meta.url).pathname,
      daemon.dataRoot,
    ],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  assert.equal(stdout, "ok\n");
  const warnings = stderr.split("\n").filter((l) => l.includes("denoland/deno#36788"));
  assert.equal(warnings.length, 1, stderr);
  assert.match(warnings[0], /Deno 2\.9\.5 can crash when modeld restarts.*use Deno 2\.9\.3/);
});

Deno.test("[test daemon v0.36.0] Describe and Embed of a missing model path fail too", async () => {
  await using daemon = await startTestDaemon({ embedding: () => [1] });
  await using client = new ModeldClient({ dataRoot: daemon.dataRoot });
  const missing = { name: "m", path: `${daemon.dataRoot}/gone.gguf` };
  await assert.rejects(() => client.describe(missing), /gone\.gguf/);
  await assert.rejects(() => client.embed(missing, "hi"), /gone\.gguf/);
});

Deno.test("[test daemon v0.36.0] default deadlines stay with the client; a timeoutMs passed is sent as grpc-timeout", async () => {
  // As Go's client: no grpc-timeout unless the caller set a deadline. The
  // defaults (Health 10 s, unary 10 min) are enforced locally.
  await using daemon = await startTestDaemon();
  await using client = new ModeldClient({ dataRoot: daemon.dataRoot });
  await client.health();
  await client.status();
  await client.status({ timeoutMs: 5_000 });
  await client.health({ timeoutMs: 2e8 });
  const sent = daemon.requests.map((r) => `${r.method} ${r.timeoutHeader ?? "-"}`);
  assert.deepEqual(sent.slice(-4), [
    "Health -",
    "Status -",
    "Status 5000m",
    "Health 200000S",
  ]);
});
