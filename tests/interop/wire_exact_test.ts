/**
 * Byte-exactness: requests with every field set (64-bit integers above 2^53,
 * zero values that must not be dropped, non-ASCII and HTML-special text,
 * binary bytes) reach the Go peer exactly. The peer logs, for every request
 * message, the raw JSON it received and the Go wire struct it decoded,
 * re-marshalled by Go; the tests check both.
 */
import assert from "node:assert/strict";
import { InvalidArgumentError, ModeldClient, SlotGenerationStaleError } from "../../mod.ts";
import { type GoProcess, parseExact, PEER_VERSION, type PeerLogEntry, startPeer } from "./peers.ts";

const TEXT = '日本語 é 🚀 <&> \u2028 "q" \\ \u0000';
const BIG = 9007199254740993n; // 2^53 + 1: a double cannot hold it
const BIG_TEXT = "9007199254740993";
const MAX_UINT64 = 2n ** 64n - 1n;

const fullConfig = {
  numCtx: 4096,
  hotContextTokens: 2048,
  plannerEffectiveContext: 8192,
  numBatch: 512,
  numThreads: 7,
  numGpuLayers: 33,
  tensorSplit: [0.5, 0.25],
  flashAttn: true,
  kvCacheType: "q8_0",
  promptFormat: "chatml",
  promptTemplateDigest: "sha256:tmpl",
  disableBos: true,
  reasoningFormat: "deepseek",
};
const goConfig = {
  NumCtx: 4096,
  HotContextTokens: 2048,
  PlannerEffectiveContext: 8192,
  NumBatch: 512,
  NumThreads: 7,
  NumGpuLayers: 33,
  TensorSplit: [0.5, 0.25],
  FlashAttn: true,
  KVCacheType: "q8_0",
  PromptFormat: "chatml",
  PromptTemplateDigest: "sha256:tmpl",
  DisableBOS: true,
  ReasoningFormat: "deepseek",
};
const adapters = [
  { name: "style é", path: "/adapters/日本.gguf", digest: "adapter-1", scale: 1.5 },
  { name: "tone", path: "/adapters/tone.gguf", digest: "adapter-2", scale: 0.25 },
];
const manifest = {
  profileId: "profile <1>",
  backend: "mem",
  backendVersion: "v1 é",
  modelDigest: "d1",
  promptFormat: "f1",
  promptTemplateDigest: "t1",
  runtimeDigest: "r1",
  addBos: true,
  stableBytes: 3,
  totalBytes: 5,
  stableByteHash: "sbh",
  stableTokenHash: "sth",
  volatileTokenHash: "vth",
  segments: [{
    kind: "system",
    stable: true,
    cacheClass: "task_pinned",
    invalidation: "on_edit",
    byteStart: 0,
    byteEnd: 3,
    byteHash: "bh",
    tokenStart: 1,
    tokenEnd: 2,
    tokenHash: "th",
    toolCallsJson: `[{"id":"c<1>"}]`,
    toolCallId: "call_&",
  }],
};
const goManifest = {
  profile_id: "profile <1>",
  backend: "mem",
  backend_version: "v1 é",
  model_digest: "d1",
  prompt_format: "f1",
  prompt_template_digest: "t1",
  runtime_digest: "r1",
  add_bos: true,
  stable_bytes: 3,
  total_bytes: 5,
  stable_byte_hash: "sbh",
  stable_token_hash: "sth",
  volatile_token_hash: "vth",
  segments: [{
    kind: "system",
    stable: true,
    cache_class: "task_pinned",
    invalidation: "on_edit",
    byte_start: 0,
    byte_end: 3,
    byte_hash: "bh",
    token_start: 1,
    token_end: 2,
    token_hash: "th",
    tool_calls_json: `[{"id":"c<1>"}]`,
    tool_call_id: "call_&",
  }],
};
const tools = `[{"type":"function","function":{"name":"lookup","description":"${
  TEXT
    .replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\u0000", "\\u0000")
}"}}]`;
const binary = Uint8Array.from({ length: 256 }, (_, i) => i);
const binaryBase64 = btoa(String.fromCharCode(...binary));

/** The request messages the peer logged for `method`, in order. */
async function requests(peer: GoProcess, method: string): Promise<PeerLogEntry[]> {
  return (await peer.log()).filter((e) =>
    e.layer === "wire" && e.event === "request" && e.method === method
  );
}

/**
 * Every key and value of `sent` (what the client put on the wire) is in
 * `decoded` (what Go decoded, re-marshalled) under the exact same key: a key
 * Go does not know, or matched only case-insensitively, or a value it read
 * differently, fails.
 */
function assertSubset(sent: unknown, decoded: unknown, path = "$"): void {
  if (Array.isArray(sent)) {
    assert.ok(Array.isArray(decoded), `${path}: Go decoded ${JSON.stringify(decoded)}`);
    assert.equal(decoded.length, sent.length, `${path}: length`);
    sent.forEach((v, i) => assertSubset(v, decoded[i], `${path}[${i}]`));
  } else if (sent !== null && typeof sent === "object") {
    assert.ok(decoded !== null && typeof decoded === "object", `${path}: not an object in Go`);
    for (const [k, v] of Object.entries(sent)) {
      assert.ok(k in decoded, `${path}.${k}: Go has no field with this exact name`);
      assertSubset(v, (decoded as Record<string, unknown>)[k], `${path}.${k}`);
    }
  } else {
    assert.equal(decoded, sent, `${path}: Go decoded a different value`);
  }
}

/** Checks every logged request message: raw ⊆ Go's decoding. */
async function assertAllRequestsExact(peer: GoProcess): Promise<number> {
  const all = (await peer.log()).filter((e) => e.layer === "wire" && e.event === "request");
  for (const e of all) {
    assert.ok(e.raw !== undefined && e.req !== undefined, `${e.method}: logged in full`);
    assertSubset(parseExact(e.raw), e.req, e.method);
  }
  assert.equal(
    (await peer.log()).filter((e) => e.event === "decode error").length,
    0,
    "Go decoded every message",
  );
  return all.length;
}

Deno.test(`[peer ${PEER_VERSION} memory] every session field reaches Go exactly`, async () => {
  await using peer = await startPeer();
  await using client = new ModeldClient({ dataRoot: peer.dataRoot });
  await using session = await client.openSession({
    name: "snapshot-state",
    type: "llama",
    digest: `sha256:${TEXT}`,
    path: `/models/${TEXT}.gguf`,
    adapters,
  }, { config: fullConfig });
  await session.ensurePrefix({ text: TEXT, manifest, tools });
  await session.prefillSuffix({
    text: TEXT,
    manifest,
    enableThinking: false,
    reasoningEffort: "high",
  });
  await session.prefillSuffix({ text: "!", manifest, enableThinking: true });
  await session.decode({ maxTokens: 2, temperature: 0, seed: 0n }).collect();
  await session.decode({
    maxTokens: 3,
    temperature: 0.25,
    topP: 0.5,
    topK: 40,
    seed: BIG,
    parserProtocols: ["openvino:deepseek_r1_reasoning_incremental_parser", TEXT],
    reasoningFormat: "deepseek",
    structuredOutput: { protocol: "p", payload: `{"type":"object","x":"${"<&>"}"}`, toolName: "t" },
  }).collect();
  await session.restore({
    stateId: TEXT,
    residentTokens: 11,
    prefixTokens: 5,
    numCtx: 4096,
    residentTokenIds: [1, 2, 2147483647],
    coldKvBlocks: [{
      start: 1,
      end: 4,
      tokens: [7, 8, 9],
      prefixTokens: [1],
      tokenHash: "th",
      kv: binary,
      cacheClass: "volatile",
      lastUsed: BIG,
    }],
    stableText: TEXT,
    prefixText: TEXT,
    tools,
    manifest,
  });
  assert.deepEqual(
    await client.embed({ name: "embed", type: "llama", digest: "e", path: "/e" }, TEXT, {
      config: fullConfig,
    }),
    [1, 2.5, -3],
  );
  await client.describe(
    { name: "describe-all", type: "llama", digest: "d", path: "/d", adapters },
    {
      config: fullConfig,
    },
  );

  const [open] = await requests(peer, "OpenSession");
  assert.deepEqual(open.req, {
    owner_instance_id: peer.instanceId,
    model_name: "snapshot-state",
    type: "llama",
    digest: `sha256:${TEXT}`,
    path: `/models/${TEXT}.gguf`,
    config: goConfig,
    adapters,
  });
  const [prefix] = await requests(peer, "EnsurePrefix");
  assert.deepEqual(prefix.req, {
    handle: session.handle,
    prefix: { Text: TEXT, Manifest: goManifest, Tools: tools },
  });
  const suffixes = await requests(peer, "PrefillSuffix");
  assert.deepEqual(suffixes.map((e) => e.req), [
    {
      handle: session.handle,
      suffix: { Text: TEXT, Manifest: goManifest, EnableThinking: false, ReasoningEffort: "high" },
    },
    { handle: session.handle, suffix: { Text: "!", Manifest: goManifest, EnableThinking: true } },
  ]);
  const decodes = await requests(peer, "Decode");
  assert.deepEqual(decodes.map((e) => e.req), [
    {
      handle: session.handle,
      config: {
        MaxTokens: 2,
        Temperature: 0, // set to zero, not absent: greedy decoding
        TopP: null,
        TopK: 0,
        Seed: 0,
        ParserProtocols: null,
        ReasoningFormat: "",
        StructuredOutput: { Protocol: "", Payload: "", ToolName: "" },
      },
    },
    {
      handle: session.handle,
      config: {
        MaxTokens: 3,
        Temperature: 0.25,
        TopP: 0.5,
        TopK: 40,
        Seed: BIG_TEXT,
        ParserProtocols: ["openvino:deepseek_r1_reasoning_incremental_parser", TEXT],
        ReasoningFormat: "deepseek",
        StructuredOutput: { Protocol: "p", Payload: `{"type":"object","x":"<&>"}`, ToolName: "t" },
      },
    },
  ]);
  assert.match(
    decodes[1].raw ?? "",
    new RegExp(`"Seed":${BIG_TEXT}[,}]`),
    "seed sent as a bare integer",
  );
  const [restore] = await requests(peer, "Restore");
  assert.deepEqual(restore.req, {
    handle: session.handle,
    snapshot: {
      state_id: TEXT,
      resident_tokens: 11,
      prefix_tokens: 5,
      num_ctx: 4096,
      resident_token_ids: [1, 2, 2147483647],
      cold_kv_blocks: [{
        start: 1,
        end: 4,
        tokens: [7, 8, 9],
        prefix_tokens: [1],
        token_hash: "th",
        kv: binaryBase64,
        cache_class: "volatile",
        last_used: BIG_TEXT,
      }],
      stable_text: TEXT,
      prefix_text: TEXT,
      tools,
      manifest: goManifest,
    },
  });
  const [embed] = await requests(peer, "Embed");
  assert.deepEqual(embed.req, {
    owner_instance_id: peer.instanceId,
    model_name: "embed",
    type: "llama",
    digest: "e",
    path: "/e",
    config: goConfig,
    text: TEXT,
  });
  const [describe] = await requests(peer, "Describe");
  assert.deepEqual(describe.req, {
    owner_instance_id: peer.instanceId,
    model_name: "describe-all",
    type: "llama",
    digest: "d",
    path: "/d",
    config: goConfig,
    adapters,
  });
  assert.ok((await assertAllRequestsExact(peer)) >= 10);
});

Deno.test(`[peer ${PEER_VERSION} slot] slot and store requests reach Go exactly`, async () => {
  await using peer = await startPeer({ mode: "slot" });
  await using client = new ModeldClient({ dataRoot: peer.dataRoot });
  const model = {
    name: "wire-model",
    type: "llama",
    digest: "sha256:d",
    path: `/m/${TEXT}`,
    adapters,
  };
  // Expected generation 2^53+1 on an empty slot: Go must compare the exact
  // value (a rounded 2^53 would be just as wrong, but visibly different here).
  await assert.rejects(
    () => client.loadModel(model, { config: fullConfig, expectedGeneration: BIG }),
    SlotGenerationStaleError,
  );
  const active = await client.loadModel(model, { config: fullConfig });
  await assert.rejects(
    () => client.unloadModel({ expectedGeneration: BIG + 2n }),
    SlotGenerationStaleError,
  );
  await client.unloadModel({ expectedGeneration: active.generation });
  await assert.rejects(
    () => client.unloadModel({ expectedGeneration: MAX_UINT64 }),
    SlotGenerationStaleError,
  );

  const push = await client.pushModel(binary, { name: "pushed", type: "llama" });
  assert.equal(push.bytesWritten, 256n);
  assert.deepEqual((await client.listModels()).map((m) => m.name), ["pushed"]);
  await client.removeModel("pushed");
  await client.diskStats();
  await client.status();

  const loads = await requests(peer, "LoadModel");
  assert.deepEqual(loads[0].req, {
    owner_instance_id: peer.instanceId,
    model_name: "wire-model",
    type: "llama",
    digest: "sha256:d",
    path: `/m/${TEXT}`,
    config: goConfig,
    adapters,
    expected_generation: BIG_TEXT,
  });
  assert.match(loads[0].raw ?? "", new RegExp(`"expected_generation":${BIG_TEXT}[,}]`));
  const svcLoad = (await peer.log()).find((e) => e.layer === "svc" && e.method === "LoadModel");
  assert.equal((svcLoad?.req as Record<string, unknown>).ExpectedGeneration, BIG_TEXT);
  const unloads = await requests(peer, "UnloadModel");
  assert.deepEqual(unloads.map((e) => e.req), [
    { owner_instance_id: peer.instanceId, expected_generation: "9007199254740995" },
    { owner_instance_id: peer.instanceId, expected_generation: Number(active.generation) },
    { owner_instance_id: peer.instanceId, expected_generation: String(MAX_UINT64) },
  ]);
  // Manifest first, alone (so the daemon can refuse early), then the data, as Go reads them.
  const frames = await requests(peer, "PushModel");
  assert.equal(frames.length, 2);
  const digest = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", binary)))
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  const [head, body] = frames.map((f) => f.req as Record<string, unknown>);
  assert.equal(head.owner_instance_id, peer.instanceId, "the body fence, as the Go client sends");
  assert.deepEqual(head.manifest, {
    name: "pushed",
    type: "llama",
    digest,
    total_bytes: 256,
    format: "file",
  });
  assert.equal(body.data, binaryBase64, "the bytes arrive exactly (0x00..0xFF)");
  const [remove] = await requests(peer, "RemoveModel");
  assert.deepEqual(remove.req, { owner_instance_id: peer.instanceId, name: "pushed" });
  for (const method of ["ListModels", "DiskStats", "Status"]) {
    const [e] = await requests(peer, method);
    assert.deepEqual(e.req, { owner_instance_id: peer.instanceId }, method);
  }
  await assertAllRequestsExact(peer);
});

Deno.test(`[peer ${PEER_VERSION} slot] an expected generation outside uint64 is refused before it is sent`, async () => {
  await using peer = await startPeer({ mode: "slot" });
  await using client = new ModeldClient({ dataRoot: peer.dataRoot });
  const model = { name: "m", type: "llama", path: "/m" };
  for (const expectedGeneration of [-1n, 2n ** 64n]) {
    await assert.rejects(
      () => client.loadModel(model, { expectedGeneration }),
      InvalidArgumentError,
      `loadModel expectedGeneration ${expectedGeneration}`,
    );
    await assert.rejects(
      () => client.unloadModel({ expectedGeneration }),
      InvalidArgumentError,
      `unloadModel expectedGeneration ${expectedGeneration}`,
    );
  }
  assert.deepEqual(await requests(peer, "LoadModel"), [], "nothing reached the daemon");
});
