/**
 * The client against the Go peer in memory mode: the real v0.36.0 gRPC server
 * over the real `transport.MemoryService` (fence on), with scripted models for
 * the cases a stock daemon cannot produce. Mirrors the client-side items of
 * contract §10.1 (`runtime/transport/grpc/grpc_test.go`).
 */
import assert from "node:assert/strict";
import {
  buildContext,
  type ChatMessage,
  ConnectionError,
  ContextOverflowError,
  DaemonCanceledError,
  type DecodeDelta,
  manifestDigest,
  ManifestMismatchError,
  ModeldClient,
  type ModelInfo,
  PermissionNeededError,
  probe,
  RemoteNode,
  SessionClosedError,
  StaleFenceError,
  UnsupportedFeatureError,
} from "../../mod.ts";
import { Session } from "../../lib/session.ts";
import { dial } from "../../lib/transport.ts";
import { assertHeapFlat } from "../faults/heap_curve.ts";
import { PEER_VERSION, startPeer, tempDataRoot } from "./peers.ts";

const T = `[peer ${PEER_VERSION} memory]`;

/** A model reference; the memory backend ignores the path. */
function model(name: string) {
  return { name, type: "llama", path: `/models/${name}.gguf` };
}

/** The manifest the Go round-trip test uses (`grpc_test.go` `manifest()`). */
async function goTestManifest(stable: string) {
  const bytes = new TextEncoder().encode(stable);
  const hash = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)))
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  return {
    backend: "mem",
    modelDigest: "d1",
    promptFormat: "f1",
    promptTemplateDigest: "t1",
    runtimeDigest: "r1",
    stableByteHash: hash,
  };
}

Deno.test(`${T} round trip: cold and warm prefix, suffix, decode, explain, snapshot, restore, close`, async () => {
  await using peer = await startPeer();
  await using client = new ModeldClient({ dataRoot: peer.dataRoot });
  const session = await client.openSession(model("m"), { config: { numCtx: 100 } });
  assert.match(session.handle, new RegExp(`^${peer.instanceId}/\\d+$`));
  const m = await goTestManifest("hello");
  const digest = await manifestDigest(m);

  const cold = await session.ensurePrefix({ text: "hello", manifest: m });
  assert.deepEqual([cold.reusedTokens, cold.prefilledTokens, cold.prefixTokens], [0, 5, 5]);
  assert.equal(cold.manifestDigest, digest, "Go's digest of the manifest equals ours");
  const warm = await session.ensurePrefix({ text: "hello", manifest: m });
  assert.deepEqual([warm.reusedTokens, warm.prefilledTokens], [5, 0]);
  const suffix = await session.prefillSuffix({ text: " world", manifest: m });
  assert.equal(suffix.residentTokens, 11);

  const deltas: DecodeDelta[] = [];
  for await (const d of session.decode({ maxTokens: 3 })) deltas.push(d);
  assert.equal(deltas.length, 3, "exactly MaxTokens chunks");
  assert.equal(deltas.map((d) => d.text).join(""), "xxx");

  assert.equal((await session.explainContext()).residentTokens, 11);
  const snap = await session.snapshot();
  assert.deepEqual([snap.residentTokens, snap.prefixTokens], [11, 5]);
  assert.equal(await manifestDigest(snap.manifest ?? {}), digest);

  const other = await session.ensurePrefix({
    text: "other",
    manifest: await goTestManifest("other"),
  });
  assert.equal(other.reusedTokens, 0);
  await session.restore(snap);
  const restored = await session.explainContext();
  assert.equal(restored.residentTokens, 11);
  assert.equal(restored.manifestDigest, digest);

  await session.close();
  // The daemon's own answer for the closed handle, through a second Session
  // object on its own connection (ours refuses calls after close client-side).
  await using conn = dial(peer.endpoint, peer.instanceId);
  const err = await new Session(conn, session.handle).ensurePrefix({ text: "x" }).catch((e) => e);
  assert.ok(err instanceof SessionClosedError, String(err));
  assert.equal(err.token, "session_closed");
  assert.equal(err.grpcCode, 9);
});

Deno.test(`${T} restart on the same address: the old session gets stale_fence, the client re-dials`, async () => {
  await using root = await tempDataRoot();
  await using first = await startPeer({ dataRoot: root.path });
  await using client = new ModeldClient({ dataRoot: root.path });
  const old = await client.openSession(model("m"), { config: { numCtx: 100 } });
  await old.ensurePrefix({ text: "hello" });
  assert.equal((await first.terminate()).code, 0);

  await using second = await startPeer({ dataRoot: root.path, listen: first.endpoint });
  assert.equal(second.endpoint, first.endpoint);
  assert.notEqual(second.instanceId, first.instanceId);
  // The old session's connection re-dials the same address and reaches the
  // new instance with the old fence: the daemon refuses it.
  const err = await old.ensurePrefix({ text: "hello" }).catch((e) => e);
  assert.ok(err instanceof StaleFenceError, String(err));
  assert.equal(err.grpcCode, 9);
  await old.close(); // the daemon refused the old fence: the session counts as closed
  assert.equal(old.closed, true);
  // The client reads the lease again and dials the new instance.
  await using fresh = await client.openSession(model("m"), { config: { numCtx: 100 } });
  assert.ok(fresh.handle.startsWith(`${second.instanceId}/`));
  assert.equal((await fresh.ensurePrefix({ text: "hello" })).reusedTokens, 0);
  assert.equal((await client.health()).instanceId, second.instanceId);
  const wire = (await second.log()).filter((e) => e.layer === "wire" && e.event === "end");
  assert.ok(
    wire.some((e) => e.method === "EnsurePrefix" && e.message?.startsWith("stale_fence: ")),
    "the new instance answered the old fence with stale_fence",
  );
});

Deno.test(`${T} restart on a new address: the old session gets a connection error`, async () => {
  await using root = await tempDataRoot();
  await using first = await startPeer({ dataRoot: root.path });
  await using client = new ModeldClient({ dataRoot: root.path });
  const old = await client.openSession(model("m"), { config: { numCtx: 100 } });
  await old.ensurePrefix({ text: "hello" });
  await first.terminate();
  await using second = await startPeer({ dataRoot: root.path });
  assert.notEqual(second.endpoint, first.endpoint);
  await assert.rejects(() => old.ensurePrefix({ text: "hello" }), ConnectionError);
  await using fresh = await client.openSession(model("m"), { config: { numCtx: 100 } });
  assert.ok(fresh.handle.startsWith(`${second.instanceId}/`));
  // The client closed the old connection when it re-dialled.
  // explainContext never throws (Go's ExplainContext returns {Closed: true} on any error).
  assert.equal((await old.explainContext()).closed, true);
  await old.close(); // a session the daemon dropped counts as closed
});

Deno.test(`${T} a daemon on [::1] needs --allow-net for that host, named in the error`, async () => {
  let started;
  try {
    started = await startPeer({ listen: "[::1]:0" });
  } catch (err) {
    // A host without IPv6 loopback cannot run this check; say so in the output.
    if (!/address family not supported|cannot assign requested address/.test(String(err))) {
      throw err;
    }
    console.log(`${T} IPv6 loopback unavailable on this host: [::1] not tested`);
    return;
  }
  await using peer = started;
  assert.match(peer.endpoint, /^\[::1\]:\d+$/);
  await using client = new ModeldClient({ dataRoot: peer.dataRoot });
  const err = await client.health().catch((e) => e);
  assert.ok(err instanceof PermissionNeededError, String(err));
  assert.match(err.message, /--allow-net=\[::1\]/);
  const p = await probe({ dataRoot: peer.dataRoot }).catch((e) => e);
  assert.ok(p instanceof PermissionNeededError, String(p));
});

Deno.test(`${T} context_overflow details on a unary call (ErrorInfo)`, async () => {
  await using peer = await startPeer();
  await using client = new ModeldClient({ dataRoot: peer.dataRoot });
  await using session = await client.openSession(model("overflow-unary"));
  const err = await session.ensurePrefix({ text: "too many tokens" }).catch((e) => e);
  assert.ok(err instanceof ContextOverflowError, String(err));
  assert.deepEqual(
    [err.stage, err.residentTokens, err.additionalTokens, err.numCtx],
    ["prefix", 2, 5, 4],
  );
  assert.equal(err.grpcCode, 8);
  assert.equal(err.rpc, "EnsurePrefix");
});

Deno.test(`${T} context_overflow without details: NumCtx 4 and a longer prefix`, async () => {
  await using peer = await startPeer();
  await using client = new ModeldClient({ dataRoot: peer.dataRoot });
  await using session = await client.openSession(model("m"), { config: { numCtx: 4 } });
  const err = await session.ensurePrefix({ text: "too many tokens" }).catch((e) => e);
  assert.ok(err instanceof ContextOverflowError, String(err));
  assert.equal(err.grpcCode, 8);
});

Deno.test(`${T} context_overflow details inside the Decode stream`, async () => {
  await using peer = await startPeer();
  await using client = new ModeldClient({ dataRoot: peer.dataRoot });
  await using session = await client.openSession(model("overflow-stream"));
  await session.ensurePrefix({ text: "p" });
  const seen: DecodeDelta[] = [];
  const err = await (async () => {
    for await (const d of session.decode({ maxTokens: 4 })) seen.push(d);
  })().catch((e) => e);
  assert.ok(err instanceof ContextOverflowError, String(err));
  assert.deepEqual(
    [err.stage, err.residentTokens, err.additionalTokens, err.numCtx],
    ["decode", 3, 1, 4],
  );
  assert.equal(seen.length, 0, "the error chunk is not yielded as output");
});

Deno.test(`${T} decode metadata round trip: config reaches Go intact, thinking and tool calls come back`, async () => {
  await using peer = await startPeer();
  await using client = new ModeldClient({ dataRoot: peer.dataRoot });
  await using session = await client.openSession(model("thinking-tools"));
  await session.ensurePrefix({ text: "p" });
  const deltas: DecodeDelta[] = [];
  for await (
    const d of session.decode({
      maxTokens: 4,
      parserProtocols: ["openvino:deepseek_r1_reasoning_incremental_parser"],
      reasoningFormat: "deepseek",
      structuredOutput: {
        protocol: "openvino:json_schema_tool_calls",
        payload: `{"type":"object"}`,
        toolName: "echo.echo",
      },
    })
  ) deltas.push(d);
  assert.equal(deltas.length, 2);
  assert.deepEqual([deltas[0].thinking, deltas[0].text, deltas[0].toolCalls.length], [
    "think",
    "",
    0,
  ]);
  assert.deepEqual([deltas[1].thinking, deltas[1].text], ["", "answer"]);
  assert.equal(deltas[1].toolCalls.length, 1);
  const call = deltas[1].toolCalls[0];
  assert.deepEqual(
    [call.id, call.type, call.function?.name, call.function?.arguments],
    ["call_1", "function", "lookup", `{"q":"x"}`],
  );

  const { entry } = await peer.waitForLog((e) =>
    e.layer === "script" && e.model === "thinking-tools" && e.event === "decode config"
  );
  assert.deepEqual(entry.req, {
    MaxTokens: 4,
    Temperature: null,
    TopP: null,
    TopK: 0,
    Seed: null,
    ParserProtocols: ["openvino:deepseek_r1_reasoning_incremental_parser"],
    ReasoningFormat: "deepseek",
    StructuredOutput: {
      Protocol: "openvino:json_schema_tool_calls",
      Payload: `{"type":"object"}`,
      ToolName: "echo.echo",
    },
  });
});

Deno.test(`${T} a cancelled OpenSession arrives as context_canceled`, async () => {
  await using peer = await startPeer();
  await using client = new ModeldClient({ dataRoot: peer.dataRoot });
  const err = await client.openSession(model("cancelled")).catch((e) => e);
  assert.ok(err instanceof DaemonCanceledError, String(err));
  assert.equal(err.token, "context_canceled");
  assert.equal(err.code, "context_canceled");
  assert.equal(err.grpcCode, 1);
});

Deno.test(`${T} Describe: every ModelInfo field arrives, int64s exact`, async () => {
  await using peer = await startPeer();
  await using client = new ModeldClient({ dataRoot: peer.dataRoot });
  const info: ModelInfo = await client.describe(model("describe-all"), {
    config: { numCtx: 8192 },
  });
  const { $typeName: _t, devices, ...fields } = info;
  assert.deepEqual(fields, {
    modelMaxContext: 131072,
    effectiveContext: 32768,
    memoryContextTokens: 65536,
    hotContextTokens: 16384,
    plannerEffectiveContext: 98304,
    kvBytesPerToken: 9007199254740993n,
    freeBytes: 9007199254740995n,
    weightsBytes: 9223372036854775807n,
    overheadBytes: 1234567890123n,
    reservedBytes: 2345678901234n,
    userLimitBytes: 3456789012345n,
    minFreeBytes: 4567890123456n,
    hostColdBudgetBytes: 5678901234567n,
    usableBytes: 6789012345678n,
    requiredBytes: 7890123456789n,
    clamped: true,
    reason: 'clamped <kv> & "quotes" \u2028 ünï ✓',
    deviceKind: "gpu",
    deviceId: "cuda:0",
    deviceTotalBytes: 9007199254740997n,
    sharedWithDisplay: true,
    requestedGpuLayers: 99,
    resolvedGpuLayers: 33,
    sparseAttention: true,
    slidingWindowAttentionTokens: 4096,
    chatTemplateFormat: "chatml",
    chatTemplateThinkingStartTag: "<think>",
    chatTemplateReasoningFormat: "deepseek",
    chatTemplateSupportsToolCalls: true,
    chatTemplateSupportsThinking: true,
    chatTemplateSupportsReasoningEffort: true,
    runtimeName: "llama.cpp",
    runtimeDigest: "sha256:runtime-digest",
    runtimeSystemInfo: "AVX2 = 1 | CUDA = 1",
    supportsGpuOffload: true,
  });
  assert.deepEqual(devices.map(({ $typeName: _d, ...d }) => d), [
    {
      index: 1,
      name: "dev-one",
      description: "Device One",
      type: "gpu",
      memoryFree: 9007199254740999n,
      memoryTotal: 9007199254741001n,
      memoryFreeKnown: true,
      memoryTotalKnown: true,
    },
    {
      index: 2,
      name: "dev-two",
      description: "Device Two",
      type: "igpu",
      memoryFree: 7n,
      memoryTotal: 8n,
      memoryFreeKnown: true,
      memoryTotalKnown: true,
    },
  ]);
  // A plain model: the memory service echoes NumCtx into the context fields.
  const plain = await client.describe(model("m"), { config: { numCtx: 321 } });
  assert.deepEqual([plain.modelMaxContext, plain.effectiveContext], [321, 321]);
});

Deno.test(`${T} Embed: the vector is exact and the request reached the service`, async () => {
  await using peer = await startPeer();
  await using client = new ModeldClient({ dataRoot: peer.dataRoot });
  const vector = await client.embed(
    { name: "embed", type: "llama", digest: "sha256:e", path: "/models/embed.gguf" },
    "embed me",
  );
  assert.deepEqual(vector, [1, 2.5, -3]);
  const { entry } = await peer.waitForLog((e) => e.layer === "svc" && e.method === "Embed");
  const req = entry.req as Record<string, unknown>;
  assert.deepEqual(
    [req.ModelName, req.Type, req.Digest, req.Path, req.Text, req.OwnerInstanceID],
    ["embed", "llama", "sha256:e", "/models/embed.gguf", "embed me", peer.instanceId],
  );
  // Any other model: the memory service has no embeddings.
  await assert.rejects(() => client.embed(model("m"), "x"), UnsupportedFeatureError);
});

Deno.test(`${T} snapshot state_id round trip: the 5 MiB state never crosses the wire`, async () => {
  await using peer = await startPeer();
  await using client = new ModeldClient({ dataRoot: peer.dataRoot });
  await using session = await client.openSession(model("snapshot-state"), {
    config: { numCtx: 128 },
  });
  await session.ensurePrefix({ text: "hello" });
  const snap = await session.snapshot();
  assert.deepEqual(
    [snap.stateId, snap.residentTokens, snap.prefixTokens, snap.numCtx],
    ["deadbeefcafef00d", 42, 21, 128],
  );
  await session.restore(snap);
  const { entry } = await peer.waitForLog((e) =>
    e.layer === "script" && e.model === "snapshot-state" && e.event === "restore"
  );
  const restored = entry.req as Record<string, unknown>;
  assert.equal(restored.state_id, "deadbeefcafef00d");
  assert.deepEqual(
    [restored.resident_tokens, restored.prefix_tokens, restored.num_ctx],
    [42, 21, 128],
  );
  assert.equal(entry.n, 0, "no State bytes came back over the wire");
  const responses = (await peer.log()).filter((e) =>
    e.layer === "wire" && e.event === "request" && e.method === "Restore"
  );
  assert.equal(responses.length, 1);
  assert.ok((responses[0].raw_len ?? 0) < 4096, "the Restore request is small");
});

Deno.test(`${T} slot RPCs on a service without a slot answer unsupported_feature`, async () => {
  await using peer = await startPeer();
  await using client = new ModeldClient({ dataRoot: peer.dataRoot });
  await assert.rejects(() => client.status(), UnsupportedFeatureError);
  await assert.rejects(() => client.loadModel(model("m")), UnsupportedFeatureError);
  await assert.rejects(() => client.listModels(), UnsupportedFeatureError);
});

Deno.test(`${T} a 20 000-chunk decode stream arrives complete`, async () => {
  await using peer = await startPeer();
  await using client = new ModeldClient({ dataRoot: peer.dataRoot });
  await using session = await client.openSession(model("m"), { config: { numCtx: 30_000 } });
  await session.ensurePrefix({ text: "p" });
  const out = await session.decode({ maxTokens: 20_000 }).collect();
  assert.equal(out.chunks, 20_000);
  assert.equal(out.text, "x".repeat(20_000));
});

Deno.test(`${T} a 6 MiB prefix crosses the wire (above grpc-go's default 4 MiB limit)`, async () => {
  await using peer = await startPeer();
  await using client = new ModeldClient({ dataRoot: peer.dataRoot });
  const text = "é".repeat(3 << 20); // 3 Mi code points, 6 MiB of UTF-8
  await using session = await client.openSession(model("m"), { config: { numCtx: 4 << 20 } });
  const status = await session.ensurePrefix({ text });
  assert.equal(status.prefixTokens, 3 << 20, "Go counted every code point");
  const [entry] = (await peer.log()).filter((e) => e.method === "EnsurePrefix" && e.raw_len);
  assert.ok((entry.raw_len ?? 0) > 6 << 20);
});

Deno.test(`${T} 64 concurrent calls share one connection`, async () => {
  await using peer = await startPeer();
  await using client = new ModeldClient({ dataRoot: peer.dataRoot });
  const results = await Promise.all(
    Array.from(
      { length: 64 },
      (_, i) => client.describe(model(`m${i}`), { config: { numCtx: i + 1 } }),
    ),
  );
  assert.deepEqual(results.map((r) => r.effectiveContext), results.map((_, i) => i + 1));
  const health = (await peer.log()).filter((e) => e.method === "Health" && e.event === "request");
  assert.equal(health.length, 1, "one dial, one health check");
});

Deno.test(`${T} buildContext turns: Go hashes our manifests identically and reuses the stable prefix`, async () => {
  await using peer = await startPeer();
  await using client = new ModeldClient({ dataRoot: peer.dataRoot });
  await using session = await client.openSession(model("m"), { config: { numCtx: 8192 } });
  const tools = [{
    name: "weather",
    description: 'Weather <now> & "later" 日本',
    parameters: { type: "object", properties: { city: { type: "string" } } },
  }];
  const history: ChatMessage[] = [
    { role: "system", content: "You are terse. <b>&</b> é 🚀" },
    { role: "user", content: "Weather in Zürich?" },
  ];
  const turn = async () => {
    const ctx = await buildContext(history, { tools });
    const prefix = await session.ensurePrefix(ctx.prefix);
    assert.equal(prefix.manifestDigest, await manifestDigest(ctx.manifest), "Go's digest = ours");
    assert.equal(prefix.prefixTokens, [...ctx.stableText].length);
    const suffix = await session.prefillSuffix(ctx.suffix);
    assert.equal(suffix.suffixTokens, [...ctx.volatileText].length);
    await session.decode({ maxTokens: 2 }).collect();
    return prefix;
  };
  const first = await turn();
  assert.equal(first.reusedTokens, 0);
  history.push(
    {
      role: "assistant",
      content: "",
      toolCalls: [{ id: "c<1>", name: "weather", arguments: { city: "Zürich" } }],
    },
    { role: "tool", content: "18 °C", toolCallId: "c<1>" },
    { role: "user", content: "And tomorrow?" },
  );
  const second = await turn();
  assert.equal(second.reusedTokens, first.prefixTokens, "the system prompt stayed warm");
  assert.equal(second.prefilledTokens, 0);
  // A suffix whose stable part changed is refused by Go.
  const changed = await buildContext([{ role: "system", content: "Other." }, history[1]], {
    tools,
  });
  const err = await session.prefillSuffix(changed.suffix).catch((e) => e);
  assert.ok(err instanceof ManifestMismatchError, String(err));
  assert.equal(
    err.detail,
    "contextasm: context manifest mismatch: stable prefix changed between EnsurePrefix and PrefillSuffix",
  );
});

Deno.test(`${T} a deadline longer than 8 digits of milliseconds is a header grpc-go accepts`, async () => {
  // grpc-timeout allows 8 digits: 2e8 ms went out as "200000000m", which grpc-go
  // refuses as malformed; it is "200000S" now. A push (over fetch) carries one too.
  await using peer = await startPeer({ mode: "slot" });
  using conn = dial(peer.endpoint, peer.instanceId);
  const node = new RemoteNode("peer", conn, "llama");
  const health = await node.health({ timeoutMs: 2e8 });
  assert.equal(health.instanceId, peer.instanceId);
  const status = await node.status({ timeoutMs: 30 * 24 * 3600 * 1000 }); // beyond setTimeout's range
  assert.ok(status.state !== undefined);
  const pushed = await node.pushModel(new TextEncoder().encode("GGUF long deadline"), {
    name: "long-deadline",
    timeoutMs: 2e8,
  });
  assert.equal(pushed.bytesWritten, 18n);
});

Deno.test(`${T} one long-lived signal passed to every call keeps V8's committed heap flat`, async () => {
  // A script with a shutdown signal passes it to every call. The call's and
  // the lease read's listeners on it were closures: with them 5–8% of what the
  // client allocated survived V8's young-generation collections, and the
  // committed heap rose 22 → 67 MiB over 30,000 calls.
  // Measured: 16 / 17.8 / 18.3 / 19.8 MiB at 1,000 / 5,000 / 10,000 / 30,000
  // calls (it was 22 / 39.5 / 64 / 67). The child has the client's own grants.
  await using peer = await startPeer();
  await assertHeapFlat("client", peer.dataRoot, [
    `--allow-read=${peer.dataRoot}`,
    "--allow-net=127.0.0.1",
  ]);
});
