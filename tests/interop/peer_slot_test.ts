/**
 * The client against the Go peer in slot mode: the real v0.36.0 gRPC server
 * over the real `modeld/slot` single-slot service (what modeld serves), with
 * the memory service as backend. Covers slot control, LoRA identity,
 * generation fencing, connection-bound sessions and decode cancellation.
 */
import assert from "node:assert/strict";
import {
  AbortedError,
  ConnectionError,
  DaemonDeadlineError,
  ModelBusyError,
  ModeldClient,
  type ModelRef,
  SessionFatalError,
  SlotGenerationStaleError,
  TimeoutError,
} from "../../mod.ts";
import { join } from "node:path";
import { PEER_VERSION, startPeer, waitFor } from "./peers.ts";

const T = `[peer ${PEER_VERSION} slot]`;
const config = { numCtx: 100 };

/** A model reference; the slot needs a non-empty path, the memory backend ignores it. */
function model(name: string): ModelRef {
  return { name, type: "llama", digest: `digest-${name}`, path: `/models/${name}.gguf` };
}

Deno.test(`${T} round trip with generation-fenced handles`, async () => {
  await using peer = await startPeer({ mode: "slot" });
  await using client = new ModeldClient({ dataRoot: peer.dataRoot });
  await using session = await client.openSession(model("m"), { config });
  const generation = (await client.status()).active?.generation ?? 0n;
  assert.ok(generation > 0n);
  assert.equal(session.handle.split("/").slice(0, 2).join("/"), `${peer.instanceId}/${generation}`);
  const cold = await session.ensurePrefix({ text: "hello" });
  assert.deepEqual([cold.reusedTokens, cold.prefilledTokens, cold.prefixTokens], [0, 5, 5]);
  assert.equal((await session.ensurePrefix({ text: "hello" })).reusedTokens, 5);
  await session.prefillSuffix({ text: " world" });
  assert.equal((await session.decode({ maxTokens: 3 }).collect()).chunks, 3);
  assert.equal((await session.explainContext()).residentTokens, 11);
});

Deno.test(`${T} slot control: load, status, open, busy, close, unload`, async () => {
  await using peer = await startPeer({ mode: "slot" });
  await using client = new ModeldClient({ dataRoot: peer.dataRoot });
  const empty = await client.status();
  assert.equal(empty.state, "Empty");
  assert.equal(empty.ownerInstanceId, peer.instanceId);
  assert.equal(empty.backend, "llama");

  const active = await client.loadModel(model("a"), { config });
  assert.equal(active.modelName, "a");
  assert.equal(active.digest, "digest-a");
  assert.equal(active.path, "/models/a.gguf");
  assert.equal(active.config?.numCtx, 100);
  assert.equal(typeof active.generation, "bigint");
  assert.ok(active.generation > 0n);

  const ready = await client.status();
  assert.equal(ready.state, "Ready");
  assert.equal(ready.active?.modelName, "a");
  assert.equal(ready.active?.generation, active.generation);

  const session = await client.openSession(model("a"), { config });
  const busy = await client.loadModel(model("b"), { config }).catch((e) => e);
  assert.ok(busy instanceof ModelBusyError, String(busy));
  assert.equal(busy.grpcCode, 9);
  // A second open handle is refused too: one handle at a time.
  await assert.rejects(() => client.openSession(model("a"), { config }), ModelBusyError);
  await session.close();
  await client.unloadModel({ expectedGeneration: active.generation });
  assert.equal((await client.status()).state, "Empty");
});

Deno.test(`${T} with an idle reaper a closed session stays warm; another model is switched in`, async () => {
  await using peer = await startPeer({ mode: "slot", idleTtl: "5m" });
  await using client = new ModeldClient({ dataRoot: peer.dataRoot });
  const a = await client.openSession(model("a"), { config });
  await a.ensurePrefix({ text: "hello" });
  await a.close();
  const genA = (await client.status()).active?.generation ?? 0n;
  // Same identity again: the resident session is handed back warm.
  const again = await client.openSession(model("a"), { config });
  assert.equal((await again.ensurePrefix({ text: "hello" })).reusedTokens, 5);
  await again.close();
  // A different model while "a" is idle: model_switch_required, then the
  // client loads "b" and retries, as the Go client does.
  await using b = await client.openSession(model("b"), { config });
  const status = await client.status();
  assert.equal(status.active?.modelName, "b");
  assert.ok((status.active?.generation ?? 0n) > genA, "the switch bumped the generation");
  assert.ok(b.handle.includes(`/${status.active?.generation}/`));
  const calls = (await peer.log())
    .filter((e) => e.layer === "wire" && e.event === "end")
    .filter((e) => e.method === "OpenSession" || e.method === "LoadModel")
    .map((e) => `${e.method}:${e.message?.split(":")[0] || "ok"}`);
  assert.deepEqual(calls, [
    "OpenSession:ok",
    "OpenSession:ok",
    "OpenSession:model_switch_required",
    "LoadModel:ok",
    "OpenSession:ok",
  ]);
});

Deno.test(`${T} LoRA adapters are part of the identity on LoadModel and Status`, async () => {
  await using peer = await startPeer({ mode: "slot" });
  await using client = new ModeldClient({ dataRoot: peer.dataRoot });
  const adapters = [
    { name: "style", path: "/adapters/style.gguf", digest: "adapter-1", scale: 1.5 },
    { name: "tone", path: "/adapters/tone.gguf", digest: "adapter-2", scale: 0.25 },
  ];
  const active = await client.loadModel({ ...model("a"), adapters }, { config });
  const plain = (xs: typeof active.adapters) => xs.map(({ $typeName: _t, ...a }) => a);
  assert.deepEqual(plain(active.adapters), adapters);
  const status = await client.status();
  assert.deepEqual(plain(status.active?.adapters ?? []), adapters);
  // A different adapter set is a different identity: opening it switches.
  await using _session = await client.openSession({ ...model("a"), adapters: [adapters[0]] }, {
    config,
  });
  const after = await client.status();
  assert.deepEqual(plain(after.active?.adapters ?? []), [adapters[0]]);
  assert.ok((after.active?.generation ?? 0n) > active.generation);
});

Deno.test(`${T} a slot_generation_stale chunk in the Decode stream keeps its class`, async () => {
  await using peer = await startPeer({ mode: "slot" });
  await using client = new ModeldClient({ dataRoot: peer.dataRoot });
  await using session = await client.openSession(model("stale-gen"), { config });
  await session.ensurePrefix({ text: "p" });
  const err = await session.decode({ maxTokens: 3 }).collect().catch((e) => e);
  assert.ok(err instanceof SlotGenerationStaleError, String(err));
  assert.equal(err.token, "slot_generation_stale");
});

Deno.test(`${T} an expected generation the slot moved past is slot_generation_stale`, async () => {
  await using peer = await startPeer({ mode: "slot" });
  await using client = new ModeldClient({ dataRoot: peer.dataRoot });
  const a = await client.loadModel(model("a"), { config });
  const b = await client.loadModel(model("b"), { config, expectedGeneration: a.generation });
  assert.ok(b.generation > a.generation);
  await assert.rejects(
    () => client.loadModel(model("c"), { config, expectedGeneration: a.generation }),
    SlotGenerationStaleError,
  );
  await assert.rejects(
    () => client.unloadModel({ expectedGeneration: a.generation }),
    SlotGenerationStaleError,
  );
  await client.unloadModel({ expectedGeneration: b.generation });
});

Deno.test(`${T} session_fatal evicts the session; the next open works`, async () => {
  await using peer = await startPeer({ mode: "slot" });
  await using client = new ModeldClient({ dataRoot: peer.dataRoot });
  const session = await client.openSession(model("fatal-prefix"), { config });
  const err = await session.ensurePrefix({ text: "p" }).catch((e) => e);
  assert.ok(err instanceof SessionFatalError, String(err));
  assert.equal(err.grpcCode, 10);
  await session.close(); // already evicted: closing is still fine
  await using next = await client.openSession(model("m"), { config });
  assert.equal((await next.ensurePrefix({ text: "ok" })).prefilledTokens, 2);
});

Deno.test(`${T} sessions are bound to the connection: closing the client frees the slot`, async () => {
  await using peer = await startPeer({ mode: "slot" });
  const client1 = new ModeldClient({ dataRoot: peer.dataRoot });
  await client1.openSession(model("a"), { config }); // never closed explicitly
  await using client2 = new ModeldClient({ dataRoot: peer.dataRoot });
  await assert.rejects(() => client2.loadModel(model("b"), { config }), ModelBusyError);
  await client1[Symbol.asyncDispose]();
  const { value: active, afterMs } = await waitFor(
    async () => {
      try {
        return await client2.loadModel(model("b"), { config });
      } catch (err) {
        if (err instanceof ModelBusyError) return undefined;
        throw err;
      }
    },
    2_000,
    "the slot to be released after the client closed",
  );
  assert.equal(active.modelName, "b");
  assert.ok(afterMs < 2_000);
  await peer.waitForLog((e) => e.layer === "wire" && e.event === "conn end", 2_000);
});

Deno.test(`${T} leaving a decode loop early cancels generation on the daemon`, async () => {
  await using peer = await startPeer({ mode: "slot" });
  await using client = new ModeldClient({ dataRoot: peer.dataRoot });
  const session = await client.openSession(model("slow-decode"), { config });
  await session.ensurePrefix({ text: "p" });
  let seen = 0;
  for await (const d of session.decode({ maxTokens: 1000 })) {
    assert.equal(d.text, "x");
    if (++seen === 3) break;
  }
  const broke = performance.now();
  const { entry } = await peer.waitForLog(
    (e) => e.layer === "script" && e.event === "decode cancelled",
    5_000,
  );
  const cancelledAfter = performance.now() - broke;
  assert.ok(cancelledAfter < 1_000, `decode cancelled after ${cancelledAfter.toFixed(0)} ms`);
  assert.ok((entry.n ?? 0) < 20, `the daemon stopped after ${entry.n} tokens`);
  await session.close();
  // The slot is free at once: no model_busy for a different model.
  const start = performance.now();
  const b = await client.loadModel(model("b"), { config });
  assert.equal(b.modelName, "b");
  assert.ok(performance.now() - start < 1_000);
  assert.equal(
    (await peer.log()).filter((e) => e.event === "decode finished").length,
    0,
    "the decode never ran to its end",
  );
});

Deno.test(`${T} aborting a decode through its signal cancels it on the daemon`, async () => {
  await using peer = await startPeer({ mode: "slot" });
  await using client = new ModeldClient({ dataRoot: peer.dataRoot });
  await using session = await client.openSession(model("slow-decode"), { config });
  await session.ensurePrefix({ text: "p" });
  const controller = new AbortController();
  let seen = 0;
  for await (const _ of session.decode({ maxTokens: 1000 }, { signal: controller.signal })) {
    if (++seen === 2) controller.abort();
  }
  assert.ok(seen >= 2 && seen < 10, `the loop ended quietly after ${seen} deltas`);
  await peer.waitForLog((e) => e.layer === "script" && e.event === "decode cancelled", 1_000);
  // The session is usable again (the daemon's op lock was released).
  assert.equal((await session.decode({ maxTokens: 2 }).collect()).chunks, 2);
});

Deno.test(`${T} snapshot state is kept on the daemon: state_id is the sha256 of the 5 MiB state`, async () => {
  await using peer = await startPeer({ mode: "slot" });
  await using client = new ModeldClient({ dataRoot: peer.dataRoot });
  await using session = await client.openSession(model("snapshot-state"), {
    config: { numCtx: 128 },
  });
  await session.ensurePrefix({ text: "hello" });
  const snap = await session.snapshot();
  const state = new Uint8Array(5 << 20).fill(0xab);
  const sha = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", state)))
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  assert.equal(snap.stateId, sha);
  assert.deepEqual([snap.residentTokens, snap.prefixTokens, snap.numCtx], [42, 21, 128]);
  const blob = await Deno.stat(join(peer.dataRoot, "modeld-blobs", "llama", `${sha}.bin`));
  assert.equal(blob.size, 5 << 20);
  await session.restore(snap);
});

Deno.test(`${T} an undrained decode holds the daemon's op lock: a queued call times out`, async () => {
  await using peer = await startPeer({ mode: "slot" });
  await using client = new ModeldClient({ dataRoot: peer.dataRoot });
  await using session = await client.openSession(model("slow-decode"), { config });
  await session.ensurePrefix({ text: "p" });
  const stream = session.decode({ maxTokens: 1000 })[Symbol.asyncIterator]();
  assert.equal((await stream.next()).value?.text, "x"); // running, then left undrained
  const started = performance.now();
  const err = await client.loadModel(model("b"), { config, timeoutMs: 300 }).catch((e) => e);
  const took = performance.now() - started;
  assert.ok(
    err instanceof TimeoutError || err instanceof DaemonDeadlineError,
    `${err?.name}: ${err?.message}`,
  );
  assert.ok(err.retryable);
  assert.ok(took >= 250 && took < 2_000, `timed out after ${took.toFixed(0)} ms`);
  // Leaving the stream cancels the decode and frees the lock.
  await stream.return?.();
  await peer.waitForLog((e) => e.event === "decode cancelled", 1_000);
  await assert.rejects(() => client.loadModel(model("b"), { config }), ModelBusyError);
});

Deno.test(`${T} a decode timeout throws TimeoutError and cancels generation`, async () => {
  await using peer = await startPeer({ mode: "slot" });
  await using client = new ModeldClient({ dataRoot: peer.dataRoot });
  await using session = await client.openSession(model("slow-decode"), { config });
  await session.ensurePrefix({ text: "p" });
  let seen = 0;
  const err = await (async () => {
    for await (const _ of session.decode({ maxTokens: 1000 }, { timeoutMs: 200 })) seen++;
  })().catch((e) => e);
  assert.ok(err instanceof TimeoutError, `${err?.name}: ${err?.message}`);
  assert.ok(seen > 0 && seen < 50, `${seen} deltas before the timeout`);
  await peer.waitForLog((e) => e.event === "decode cancelled", 1_000);
  assert.equal((await session.decode({ maxTokens: 2 }).collect()).chunks, 2);
});

Deno.test(`${T} aborting a queued unary call surfaces AbortedError`, async () => {
  await using peer = await startPeer({ mode: "slot" });
  await using client = new ModeldClient({ dataRoot: peer.dataRoot });
  await using session = await client.openSession(model("slow-decode"), { config });
  await session.ensurePrefix({ text: "p" });
  const stream = session.decode({ maxTokens: 1000 })[Symbol.asyncIterator]();
  await stream.next();
  const controller = new AbortController();
  setTimeout(() => controller.abort(new Error("user gave up")), 100);
  const err = await client.loadModel(model("b"), { config, signal: controller.signal })
    .catch((e) => e);
  assert.ok(err instanceof AbortedError, `${err?.name}: ${err?.message}`);
  await stream.return?.();
  // The aborted LoadModel never ran: the slot still holds the session's model.
  assert.equal((await client.status()).active?.modelName, "slow-decode");
});

Deno.test(`${T} the idle reaper reclaims an open session: explain says closed, calls are slot_generation_stale`, async () => {
  await using peer = await startPeer({ mode: "slot", idleTtl: "1s" });
  await using client = new ModeldClient({ dataRoot: peer.dataRoot });
  const session = await client.openSession(model("m"), { config });
  await session.ensurePrefix({ text: "hello" });
  const { afterMs } = await waitFor(
    async () => (await client.status()).state === "Idle" || undefined,
    5_000,
    "the idle reaper",
  );
  assert.ok(afterMs < 5_000);
  const report = await session.explainContext();
  assert.equal(report.closed, true, "ExplainContext answers OK with closed: true");
  await assert.rejects(() => session.ensurePrefix({ text: "hello" }), SlotGenerationStaleError);
  await assert.rejects(() => session.decode({ maxTokens: 1 }).collect(), SlotGenerationStaleError);
  await session.close(); // gone on the daemon: counts as closed
  await using reopened = await client.openSession(model("m"), { config });
  assert.equal((await reopened.ensurePrefix({ text: "hello" })).reusedTokens, 0, "cold again");
});

Deno.test(`${T} a graceful stop lets a running decode finish`, async () => {
  await using peer = await startPeer({ mode: "slot" });
  await using client = new ModeldClient({ dataRoot: peer.dataRoot });
  const session = await client.openSession(model("slow-decode"), { config });
  await session.ensurePrefix({ text: "p" });
  let seen = 0;
  let stopping: Promise<Deno.CommandStatus> | undefined;
  for await (const _ of session.decode({ maxTokens: 25 })) {
    if (++seen === 3) stopping = peer.terminate(); // SIGTERM mid-stream: GOAWAY, then wait
  }
  assert.equal(seen, 25, "every token arrived after the GOAWAY");
  assert.equal((await stopping)?.code, 0);
  assert.ok(peer.stdout.some((l) => l.startsWith("peer stopped")));
  await session.close(); // the daemon is gone: counts as closed
});

Deno.test(`${T} a daemon crash mid-decode throws from the loop instead of ending quietly`, async () => {
  await using peer = await startPeer({ mode: "slot" });
  await using client = new ModeldClient({ dataRoot: peer.dataRoot });
  const session = await client.openSession(model("slow-decode"), { config });
  await session.ensurePrefix({ text: "p" });
  let seen = 0;
  const err = await (async () => {
    for await (const _ of session.decode({ maxTokens: 1000 })) {
      if (++seen === 3) await peer.kill();
    }
  })().then(() => undefined, (e) => e);
  assert.ok(err instanceof ConnectionError, `the loop ended with ${err} after ${seen} deltas`);
  assert.ok(seen < 10);
  await session.close();
});

Deno.test(`${T} closing the client mid-decode throws from the loop instead of ending quietly`, async () => {
  await using peer = await startPeer({ mode: "slot" });
  const client = new ModeldClient({ dataRoot: peer.dataRoot });
  const session = await client.openSession(model("slow-decode"), { config });
  await session.ensurePrefix({ text: "p" });
  let seen = 0;
  const err = await (async () => {
    for await (const _ of session.decode({ maxTokens: 1000 })) {
      if (++seen === 3) client.close();
    }
  })().then(() => undefined, (e) => e);
  assert.ok(err instanceof ConnectionError, `the loop ended with ${err} after ${seen} deltas`);
  await peer.waitForLog((e) => e.event === "decode cancelled", 1_000);
  await client[Symbol.asyncDispose]();
});
