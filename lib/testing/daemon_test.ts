// Lifecycle of the test daemon (lease, stop, kill, connection binding,
// cancellation) and the raw wire details a hand-rolled client would see.

import { fromBinary } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import assert from "node:assert/strict";
import http2 from "node:http2";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.ts";
import { StatusSchema } from "../../gen/google/rpc/status_pb.ts";
import { isLive, readLease } from "../lease.ts";
import { dial, FENCE_HEADER } from "../transport.ts";
import { envelopeOf as envelope, EnvelopeSplitter } from "../envelope.ts";
import { startTestDaemon } from "./daemon.ts";
import { exists, modelFile, rawGrpcCall, rejects } from "./_test_support.ts";

const MODEL = await modelFile();

async function waitFor(cond: () => boolean, ms = 2000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) assert.fail("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** One raw h2c unary call, for wire details the Connect client hides. */
function rawCall(
  session: http2.ClientHttp2Session,
  path: string,
  headers: Record<string, string | string[]>,
  body: Uint8Array,
): Promise<
  { headers: Record<string, unknown>; trailers: Record<string, unknown>; data: Uint8Array }
> {
  {
    return new Promise((resolve, reject) => {
      const req = session.request({ ":method": "POST", ":path": path, ...headers });
      let resHeaders: Record<string, unknown> = {};
      let trailers: Record<string, unknown> = {};
      const chunks: Uint8Array[] = [];
      req.on("response", (h) => (resHeaders = h as Record<string, unknown>));
      req.on("trailers", (t) => (trailers = t as Record<string, unknown>));
      req.on("data", (c: Uint8Array) => chunks.push(c));
      req.on("end", () => {
        const data = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
        let off = 0;
        for (const c of chunks) {
          data.set(c, off);
          off += c.length;
        }
        resolve({ headers: resHeaders, trailers, data });
      });
      req.on("error", reject);
      req.end(body);
    });
  }
}

Deno.test("the lease names the daemon while it runs and is removed on stop", async () => {
  const daemon = await startTestDaemon({ backend: "openvino", ttlMs: 60 });
  try {
    const lease = await readLease(daemon.dataRoot);
    assert.ok(lease && isLive(lease));
    assert.equal(lease.instanceId, daemon.instanceId);
    assert.equal(lease.endpoint, daemon.endpoint);
    assert.equal(lease.backend, "openvino");
    assert.equal(lease.ttlNanos, 60_000_000);
    // Renewed every ttl/3: still live well after one ttl.
    await new Promise((r) => setTimeout(r, 150));
    const later = await readLease(daemon.dataRoot);
    assert.ok(later && isLive(later));
    assert.ok(later.renewedAt.getTime() > lease.renewedAt.getTime());
  } finally {
    await daemon.stop();
  }
  assert.equal(await exists(daemon.leasePath), false);
  assert.equal(await exists(daemon.dataRoot), false, "the temporary data root is removed");
});

Deno.test("stop() is graceful: a decode in flight finishes (GOAWAY), a new connection is refused", async () => {
  const daemon = await startTestDaemon({ reply: "a b c d e f g h", chunkDelayMs: 30 });
  await using conn = dial(daemon.endpoint, daemon.instanceId);
  const { handle } = await conn.rpc.openSession({
    ownerInstanceId: daemon.instanceId,
    modelName: "m",
    path: MODEL,
  });
  const texts: string[] = [];
  const decoding = (async () => {
    for await (const c of conn.rpc.decode({ handle, config: { maxTokens: 0 } })) texts.push(c.text);
  })();
  await waitFor(() => texts.length >= 2);
  const stopped = daemon.stop();
  await decoding; // the stream that was open when GOAWAY went out completes
  assert.equal(texts.join(""), "a b c d e f g h");
  await stopped;
  using late = dial(daemon.endpoint, "");
  await assert.rejects(
    () => late.rpc.health({}),
    (err) => ConnectError.from(err).code === Code.Unavailable,
  );
});

Deno.test("a client that does not speak HTTP/2 is closed with GOAWAY; the daemon keeps serving", async () => {
  await using daemon = await startTestDaemon();
  const port = Number(daemon.endpoint.split(":").at(-1));
  const raw = await Deno.connect({ hostname: "127.0.0.1", port });
  await raw.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: modeld\r\n\r\n"));
  const received: number[] = [];
  const buf = new Uint8Array(1024);
  for (let n; (n = await raw.read(buf).catch(() => null)) !== null;) {
    received.push(...buf.subarray(0, n));
  }
  raw.close();
  // SETTINGS, WINDOW_UPDATE, then GOAWAY with PROTOCOL_ERROR (frame type 7, code 1).
  const frames: { type: number; payload: number[] }[] = [];
  for (let at = 0; at + 9 <= received.length;) {
    const length = (received[at] << 16) | (received[at + 1] << 8) | received[at + 2];
    frames.push({ type: received[at + 3], payload: received.slice(at + 9, at + 9 + length) });
    at += 9 + length;
  }
  const goaway = frames.find((f) => f.type === 7);
  assert.ok(goaway, `frames ${frames.map((f) => f.type)}`);
  assert.equal(goaway.payload[7], 1);
  using conn = dial(daemon.endpoint, "");
  assert.equal((await conn.rpc.health({})).ready, true);
});

Deno.test("stop() releases the lease but keeps a caller's data root", async () => {
  const root = await Deno.makeTempDir({ prefix: "modeld-test-root-" });
  try {
    const daemon = await startTestDaemon({ dataRoot: root });
    assert.equal(await exists(daemon.leasePath), true);
    await daemon.stop();
    await daemon.stop(); // idempotent
    assert.equal(await exists(daemon.leasePath), false);
    assert.equal(await exists(root), true);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("kill() drops connections and leaves the lease behind", async () => {
  const root = await Deno.makeTempDir({ prefix: "modeld-test-root-" });
  try {
    const daemon = await startTestDaemon({ dataRoot: root, ttlMs: 30_000 });
    await using conn = dial(daemon.endpoint, daemon.instanceId);
    await conn.rpc.health({});
    await daemon.kill();
    const lease = await readLease(root);
    assert.equal(lease?.instanceId, daemon.instanceId, "the lease stays, like after SIGKILL");
    const err = await rejects(conn.rpc.health({}));
    assert.equal(err.code, Code.Unavailable);
    await daemon.stop(); // only cleans up after kill
    assert.equal((await readLease(root))?.instanceId, daemon.instanceId);
    // A new daemon cannot take the root while the dead one's lease is fresh.
    await assert.rejects(startTestDaemon({ dataRoot: root }), /held by instance/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("v0.36 closes the sessions of a connection when it closes; v0.32.3 does not", async () => {
  for (const version of ["v0.36.0", "v0.32.3"] as const) {
    await using daemon = await startTestDaemon({ version });
    const conn = dial(daemon.endpoint, daemon.instanceId);
    await conn.rpc.openSession({ ownerInstanceId: daemon.instanceId, modelName: "m", path: MODEL });
    assert.equal(daemon.openSessions, 1);
    conn.close();
    if (version === "v0.36.0") {
      await waitFor(() => daemon.openSessions === 0);
      // The slot is free again for another client.
      await using other = dial(daemon.endpoint, daemon.instanceId);
      const { handle } = await other.rpc.openSession({
        ownerInstanceId: daemon.instanceId,
        modelName: "m",
        path: MODEL,
      });
      assert.match(handle, /\/1\/2$/, "same generation (model stayed resident), next seq");
      await other.rpc.closeSession({ handle });
    } else {
      await waitFor(() => daemon.connections === 0);
      assert.equal(daemon.openSessions, 1);
    }
  }
});

Deno.test("a Decode reset by the client is counted and frees the slot", async () => {
  await using daemon = await startTestDaemon({
    reply: "one two three four five six",
    chunkDelayMs: 20,
  });
  await using conn = dial(daemon.endpoint, daemon.instanceId);
  const { handle } = await conn.rpc.openSession({
    ownerInstanceId: daemon.instanceId,
    modelName: "m",
    path: MODEL,
  });
  const controller = new AbortController();
  const seen: string[] = [];
  try {
    for await (
      const chunk of conn.rpc.decode({ handle, config: { maxTokens: 0 } }, {
        signal: controller.signal,
      })
    ) {
      seen.push(chunk.text);
      if (seen.length === 2) controller.abort();
    }
    assert.fail("the stream should have been aborted");
  } catch (err) {
    assert.ok(ConnectError.from(err).code === Code.Canceled);
  }
  assert.deepEqual(seen, ["one", " two"]);
  await waitFor(() => daemon.decodesCancelled === 1);
  // The op lock was released: the session answers again.
  const report = await conn.rpc.explainContext({ handle });
  assert.equal(report.closed, false);
  await conn.rpc.closeSession({ handle });
});

Deno.test("held Decode chunks (streamFlushMs): every one, in order, fewer writes; an in-band error and a cancel still arrive", async () => {
  const words = Array.from({ length: 30 }, (_, i) => `w${i}`);
  await using daemon = await startTestDaemon({
    reply: ({ prompt }) =>
      prompt.suffix === "fail"
        ? { tokens: ["a", "b", "c"], error: { token: "session_fatal" } }
        : words.join(" "),
    chunkDelayMs: 2,
    streamFlushMs: 40,
  });
  await using conn = dial(daemon.endpoint, daemon.instanceId);
  const { handle } = await conn.rpc.openSession({
    ownerInstanceId: daemon.instanceId,
    modelName: "m",
    path: MODEL,
  });
  // Every chunk, in order, each its own message; counted in HTTP/2 DATA frames too.
  const { data } = await rawGrpcCall(
    daemon.endpoint,
    "/contenox.transport.v1.Compute/Decode",
    envelope(JSON.stringify({ handle, config: { MaxTokens: 0 } })),
    [[FENCE_HEADER, daemon.instanceId]],
  );
  const frames = data.length;
  const splitter = new EnvelopeSplitter(1 << 20);
  const texts: string[] = [];
  for (const chunk of data) {
    splitter.push(
      chunk,
      (_flags, payload) => texts.push(JSON.parse(new TextDecoder().decode(payload)).text),
    );
  }
  assert.deepEqual(texts.join(""), words.join(" "));
  assert.equal(texts.length, words.length);
  assert.ok(frames <= words.length / 3, `${frames} DATA frames for ${words.length} chunks`);

  // An in-band error after held chunks arrives after them.
  await conn.rpc.prefillSuffix({ handle, suffix: { text: "fail" } });
  const failed = [];
  for await (const c of conn.rpc.decode({ handle, config: { maxTokens: 10 } })) failed.push(c);
  assert.deepEqual(failed.map((c) => c.text), ["a", "b", "c", ""]);
  assert.equal(failed[3].errorToken, "session_fatal");

  // A cancel while chunks are held frees the slot.
  const { handle: second } = await conn.rpc.openSession({
    ownerInstanceId: daemon.instanceId,
    modelName: "m",
    path: MODEL,
  });
  const controller = new AbortController();
  let seen = 0;
  await assert.rejects(async () => {
    for await (
      const _ of conn.rpc.decode({ handle: second, config: { maxTokens: 0 } }, {
        signal: controller.signal,
      })
    ) if (++seen === 2) controller.abort();
  });
  await waitFor(() => daemon.decodesCancelled === 1);
  assert.equal((await conn.rpc.explainContext({ handle: second })).closed, false);
});

Deno.test("scripted replies honour MaxTokens, thinking, tool calls and in-band errors", async () => {
  await using daemon = await startTestDaemon({
    reply: ({ prompt }) =>
      prompt.suffix === "tools"
        ? {
          thinking: ["hmm"],
          tokens: ["ok"],
          toolCalls: [{
            id: "call_1",
            type: "function",
            function: { name: "lookup", arguments: '{"q":"x"}' },
          }],
        }
        : prompt.suffix === "fail"
        ? { tokens: ["a"], error: { token: "session_fatal" } }
        : `echo: ${prompt.prefix}|${prompt.suffix}`,
  });
  await using conn = dial(daemon.endpoint, daemon.instanceId);
  const rpc = conn.rpc;
  const { handle } = await rpc.openSession({
    ownerInstanceId: daemon.instanceId,
    modelName: "m",
    path: MODEL,
  });
  await rpc.ensurePrefix({ handle, prefix: { text: "sys" } });
  await rpc.prefillSuffix({ handle, suffix: { text: "hi there" } });
  const texts: string[] = [];
  for await (const c of rpc.decode({ handle, config: { maxTokens: 2 } })) texts.push(c.text);
  assert.deepEqual(texts, ["echo:", " sys|hi"]);

  await rpc.ensurePrefix({ handle, prefix: { text: "sys" } });
  await rpc.prefillSuffix({ handle, suffix: { text: "tools" } });
  const chunks = [];
  for await (const c of rpc.decode({ handle, config: { maxTokens: 10 } })) chunks.push(c);
  assert.equal(chunks[0].thinking, "hmm");
  assert.equal(chunks[1].text, "ok");
  assert.equal(chunks[2].toolCalls[0].function?.name, "lookup");
  assert.equal(chunks[2].toolCalls[0].function?.arguments, '{"q":"x"}');

  await rpc.ensurePrefix({ handle, prefix: { text: "sys" } });
  await rpc.prefillSuffix({ handle, suffix: { text: "fail" } });
  const failed = [];
  for await (const c of rpc.decode({ handle, config: { maxTokens: 10 } })) failed.push(c);
  assert.equal(failed.length, 2);
  assert.equal(failed[1].error, "session marked fatal; evict and reopen");
  assert.equal(failed[1].errorToken, "session_fatal");
  // session_fatal evicted the slot: the handle is now stale.
  const stale = await rejects(rpc.ensurePrefix({ handle, prefix: { text: "sys" } }));
  assert.equal(stale.rawMessage, "slot_generation_stale: stale modeld slot generation");
  await rpc.closeSession({ handle });
});

Deno.test("a decode past the window ends with an in-band overflow chunk", async () => {
  for (const version of ["v0.36.0", "v0.32.3"] as const) {
    await using daemon = await startTestDaemon({ version });
    await using conn = dial(daemon.endpoint, daemon.instanceId);
    const rpc = conn.rpc;
    const { handle } = await rpc.openSession({
      ownerInstanceId: daemon.instanceId,
      modelName: "m",
      path: MODEL,
      config: { numCtx: 4 },
    });
    await rpc.ensurePrefix({ handle, prefix: { text: "abc" } });
    const chunks = [];
    for await (const c of rpc.decode({ handle, config: { maxTokens: 3 } })) chunks.push(c);
    assert.equal(chunks.length, 2);
    assert.equal(chunks[0].text, "x");
    if (version === "v0.36.0") {
      assert.equal(
        chunks[1].error,
        "exceeded the session context window during decode: resident_tokens=4 additional_tokens=1 num_ctx=4",
      );
      assert.equal(chunks[1].errorToken, "context_overflow");
      assert.deepEqual(
        [
          chunks[1].errorDetail?.stage,
          chunks[1].errorDetail?.residentTokens,
          chunks[1].errorDetail?.numCtx,
        ],
        ["decode", 4, 4],
      );
    } else {
      assert.equal(chunks[1].error, "exceeded the session context window");
      assert.equal(chunks[1].errorToken, "");
    }
  }
});

Deno.test("v0.32.3 answers newer methods with UNIMPLEMENTED", async () => {
  await using daemon = await startTestDaemon({ version: "v0.32.3" });
  await using conn = dial(daemon.endpoint, daemon.instanceId);
  const err = await rejects(conn.rpc.status({}));
  assert.equal(err.code, Code.Unimplemented);
  assert.equal(err.rawMessage, "unknown method Status for service contenox.transport.v1.Compute");
  // CloseSession is always OK at v0.32.3, even for unknown handles.
  await conn.rpc.closeSession({ handle: `${daemon.instanceId}/99` });
});

Deno.test("wire details: plain application/grpc, percent-encoding, trailers-only, details-bin", async () => {
  await using daemon = await startTestDaemon();
  // One connection for all calls: v0.36 closes a connection's sessions with it.
  const h2 = http2.connect(`http://${daemon.endpoint}`);
  await using _closeH2 = {
    [Symbol.asyncDispose]: () => new Promise<void>((r) => h2.close(() => r())),
  };
  const path = "/contenox.transport.v1.Compute/";
  const fence = { "x-contenox-owner-instance": daemon.instanceId };

  const plain = await rawCall(
    h2,
    `${path}Health`,
    { "content-type": "application/grpc" },
    envelope("{}"),
  );
  assert.equal(plain.headers["grpc-status"], String(Code.Internal));
  assert.equal(
    decodeURIComponent(String(plain.headers["grpc-message"])),
    "grpc: error unmarshalling request: failed to unmarshal, message is *grpc.healthReq, want proto.Message",
  );
  assert.equal(plain.headers["content-type"], "application/grpc");

  const semi = await rawCall(
    h2,
    `${path}Health`,
    { "content-type": "application/grpc;contenoxtransportjson" },
    envelope("{}"),
  );
  assert.equal(semi.trailers["grpc-status"], "0");
  assert.equal(semi.headers["content-type"], "application/grpc+contenoxtransportjson");
  assert.match(new TextDecoder().decode(semi.data.subarray(5)), /"ready":true/);

  const empty = await rawCall(
    h2,
    `${path}OpenSession`,
    { "content-type": "application/grpc+contenoxtransportjson", ...fence },
    envelope(""),
  );
  assert.equal(empty.headers["grpc-status"], String(Code.Internal));
  assert.equal(
    decodeURIComponent(String(empty.headers["grpc-message"])),
    "grpc: error unmarshalling request: unexpected end of JSON input",
  );

  // Trailers-only error with a percent-encoded message and an ErrorInfo detail.
  const open = await rawCall(
    h2,
    `${path}OpenSession`,
    { "content-type": "application/grpc+contenoxtransportjson", ...fence },
    envelope(
      `{"owner_instance_id":"${daemon.instanceId}","model_name":"m","path":${
        JSON.stringify(MODEL)
      },"config":{"NumCtx":2}}`,
    ),
  );
  const handle = JSON.parse(new TextDecoder().decode(open.data.subarray(5))).handle;
  const overflow = await rawCall(
    h2,
    `${path}EnsurePrefix`,
    { "content-type": "application/grpc+contenoxtransportjson", ...fence },
    envelope(JSON.stringify({ handle, prefix: { Text: "100% ü" } })),
  );
  assert.equal(overflow.data.length, 0, "trailers-only: no DATA");
  assert.equal(overflow.headers["grpc-status"], String(Code.ResourceExhausted));
  assert.equal(
    overflow.headers["grpc-message"],
    "context_overflow: exceeded the session context window during prefix: resident_tokens=0 additional_tokens=6 num_ctx=2",
  );
  const bin = String(overflow.headers["grpc-status-details-bin"]);
  assert.doesNotMatch(bin, /=$/, "unpadded base64");
  const padded = bin + "=".repeat((4 - (bin.length % 4)) % 4);
  const status = fromBinary(StatusSchema, Uint8Array.from(atob(padded), (c) => c.charCodeAt(0)));
  assert.equal(status.code, Code.ResourceExhausted);
  assert.equal(status.message, overflow.headers["grpc-message"]);
  const info = anyUnpack(status.details[0], ErrorInfoSchema);
  assert.equal(info?.reason, "context_overflow");
  assert.equal(info?.domain, "contenox.transport");
  assert.deepEqual({ ...info?.metadata }, {
    stage: "prefix",
    resident_tokens: "0",
    additional_tokens: "6",
    num_ctx: "2",
  });

  const fenced = await rawCall(
    h2,
    `${path}ListModels`,
    { "content-type": "application/grpc+contenoxtransportjson" },
    envelope("{}"),
  );
  assert.equal(
    decodeURIComponent(String(fenced.headers["grpc-message"])),
    "stale_fence: stale owner fence token",
  );

  const twice = await rawCall(
    h2,
    `${path}ListModels`,
    {
      "content-type": "application/grpc+contenoxtransportjson",
      "x-contenox-owner-instance": [daemon.instanceId, daemon.instanceId],
    },
    envelope("{}"),
  );
  assert.equal(
    decodeURIComponent(String(twice.headers["grpc-message"])),
    "stale_fence: stale owner fence token",
    "the fence must be exactly one value",
  );

  const unknown = await rawCall(
    h2,
    "/contenox.transport.v1.Nope/Health",
    { "content-type": "application/grpc+contenoxtransportjson" },
    envelope("{}"),
  );
  assert.equal(unknown.headers["grpc-status"], String(Code.Unimplemented));
  assert.equal(
    decodeURIComponent(String(unknown.headers["grpc-message"])),
    "unknown service contenox.transport.v1.Nope",
  );

  const percent = await rawCall(
    h2,
    `${path}OpenSession`,
    { "content-type": "application/grpc+contenoxtransportjson", ...fence },
    envelope(
      JSON.stringify({ owner_instance_id: daemon.instanceId, model_name: "ü%", type: "llama" }),
    ),
  );
  assert.equal(percent.headers["grpc-status"], String(Code.NotFound));
  assert.equal(
    percent.headers["grpc-message"],
    "model_not_found: model not found in modeld's local store: %C3%BC%25 (llama)",
  );
});
