/**
 * `deno bench` for the client: RPCs through the public API against the real
 * v0.36.0 gRPC server (the Go peer, tests/interop/bin/peer, built by
 * tests/interop/build.sh), plus pure-CPU benches of the JSON re-encoding
 * (lib/go_json.ts) and of buildContext (lib/context.ts).
 *
 * Two peers start during module load (top-level await) in temporary data
 * roots under $TMPDIR: a `memory` peer (bare MemoryService) and a `slot` peer
 * (the single-slot service real modeld serves; PushModel and warm reuse across
 * sessions need it). An `unload` listener stops both when the bench ends.
 *
 * Run from the repository root:
 *
 *   bash tests/interop/build.sh && mkdir -p .cache/tmp && TMPDIR=$PWD/.cache/tmp \
 *     deno bench --allow-read=.cache/tmp --allow-write=.cache/tmp \
 *     --allow-net=127.0.0.1 --allow-run=tests/interop/bin/peer bench/client_bench.ts
 *
 * These are measurements, not assertions: nothing here fails on a slow run.
 *
 * @module
 */

import { create, toJson } from "@bufbuild/protobuf";
import { buildContext, type ChatMessage, ModeldClient, type ToolDefinition } from "../mod.ts";
import {
  EnsurePrefixRequestSchema,
  PushModelChunkSchema,
} from "../gen/contenox/transport/v1/compute_pb.ts";
import { encodeEnvelope } from "../lib/envelope.ts";
import { quoteUnsafeIntegers } from "../lib/go_json.ts";
import {
  DECODE_TOKENS,
  drain,
  MODEL,
  nonAsciiPrefix,
  PUSH_NAME,
  pushPayload,
  sha256Hex,
  startBenchPeer,
  turn,
  TURN_PREFIX,
} from "./workloads.ts";

// ---------------------------------------------------------------------------
// Setup (module load): two peers, one client each, a few open sessions.

const memoryPeer = await startBenchPeer("memory");
const slotPeer = await startBenchPeer("slot").catch(async (err) => {
  await memoryPeer.stop();
  throw err;
});
addEventListener("unload", () => {
  memoryClient.close();
  slotClient.close();
  memoryPeer.stopSync();
  slotPeer.stopSync();
});

const memoryClient = new ModeldClient({ dataRoot: memoryPeer.dataRoot });
const slotClient = new ModeldClient({ dataRoot: slotPeer.dataRoot });
await memoryClient.health();
await slotClient.health();
// The same daemon by address: a RemoteNode skips the per-call lease read.
const memoryNode = await memoryClient.endpoint("memory", memoryPeer.endpoint);

// Memory mode: independent sessions, so each bench keeps its own open.
const decodeSession = await memoryClient.openSession(MODEL);
await decodeSession.ensurePrefix({ text: TURN_PREFIX });
const prefixSession = await memoryClient.openSession(MODEL);
const prefix64k = nonAsciiPrefix();

const payload = pushPayload();
const payloadDigest = await sha256Hex(payload);
// Untimed first push, so every timed push takes the same "already present" path.
await slotClient.pushModel(payload, { name: PUSH_NAME, digest: payloadDigest });
await turn(slotClient); // loads the slot's model

// ---------------------------------------------------------------------------
// RPCs

Deno.bench({
  name: "health round trip",
  group: "rpc",
  baseline: true,
  async fn() {
    await memoryClient.health();
  },
});

Deno.bench({
  name: "health round trip via client.endpoint() (no lease file read per call)",
  group: "rpc",
  async fn() {
    await memoryNode.health();
  },
});

Deno.bench({
  name: "session turn: open + ensurePrefix(warm) + prefillSuffix + decode 32 + close (slot)",
  group: "rpc",
  async fn() {
    await turn(slotClient);
  },
});

Deno.bench({
  name: `decode ${DECODE_TOKENS} tokens (chunks/s = ${DECODE_TOKENS} / time)`,
  group: "rpc",
  async fn() {
    const n = await drain(decodeSession.decode({ maxTokens: DECODE_TOKENS }));
    if (n !== DECODE_TOKENS) throw new Error(`decoded ${n} chunks`);
  },
});

Deno.bench({
  name: "ensurePrefix 64 KiB non-ASCII prefix",
  group: "rpc",
  async fn() {
    await prefixSession.ensurePrefix({ text: prefix64k });
  },
});

Deno.bench({
  name: "pushModel 16 MiB, digest given (slot; MiB/s = 16 / time)",
  group: "push",
  baseline: true,
  n: 20,
  warmup: 2,
  async fn() {
    await slotClient.pushModel(payload, { name: PUSH_NAME, digest: payloadDigest });
  },
});

Deno.bench({
  name: "pushModel 16 MiB, digest computed by the client",
  group: "push",
  n: 20,
  warmup: 2,
  async fn() {
    await slotClient.pushModel(payload, { name: PUSH_NAME });
  },
});

// ---------------------------------------------------------------------------
// CPU: the JSON re-encoding lib/transport.ts does for every message.

// The largest request the client sends: one 4 MiB PushModel frame (base64 in JSON).
const frame = create(PushModelChunkSchema, { data: payload.subarray(0, 4 * 1024 * 1024) });

// A large Go-written response: ListModels with 2,000 models (~400 KiB).
function listModelsText(sizeBytes: bigint, hexDigests: boolean): string {
  const models = Array.from({ length: 2000 }, (_, i) => ({
    name: `model-${i}-${"q".repeat(40)}`,
    type: "llama",
    // Real sha256 hex has runs of 16+ decimal digits now and then, which
    // defeats quoteUnsafeIntegers' fast path; letters-only digests keep it.
    digest: hexDigests
      ? (BigInt(i + 1) * 0x9e3779b97f4a7c15n).toString(16).repeat(4).slice(0, 64)
      : "abcdef".repeat(11).slice(0, 64),
    size_bytes: sizeBytes + BigInt(i),
    context_length: 131072,
  }));
  // Go writes int64 bare: emulate it (JSON.stringify cannot write a bigint).
  return JSON.stringify({ models }, (_k, v) => typeof v === "bigint" ? `#${v}#` : v)
    .replace(/"#(\d+)#"/g, "$1");
}
const listFast = listModelsText(4_000_000_000n, false); // no run of 16 digits: fast path
const listHex = listModelsText(4_000_000_000n, true); // safe ints, hex digests: full scan
const listUnsafe = listModelsText(2n ** 60n, true); // every size beyond 2^53: full scan, rewrites
const decodeChunkText = '{"Text":"x"}';

const prefixRequest = create(EnsurePrefixRequestSchema, {
  handle: "i/1/2",
  prefix: { text: prefix64k },
});

Deno.bench({
  name: "request: encodeEnvelope of a 4 MiB PushModel frame (Go JSON bytes, one pass)",
  group: "go_json request",
  baseline: true,
  fn() {
    encodeEnvelope(PushModelChunkSchema, frame);
  },
});

Deno.bench({
  name: "request: protobuf-es toJson + JSON.stringify of the same frame (Connect's own cost)",
  group: "go_json request",
  fn() {
    JSON.stringify(toJson(PushModelChunkSchema, frame));
  },
});

Deno.bench({
  name: "request: encodeEnvelope of a 64 KiB non-ASCII EnsurePrefix",
  group: "go_json request",
  fn() {
    encodeEnvelope(EnsurePrefixRequestSchema, prefixRequest);
  },
});

Deno.bench({
  name: `response: quoteUnsafeIntegers, ListModels ${
    (listFast.length / 1024).toFixed(0)
  } KiB, no 16-digit run (fast path)`,
  group: "go_json response",
  baseline: true,
  fn() {
    quoteUnsafeIntegers(listFast);
  },
});

Deno.bench({
  name: `response: quoteUnsafeIntegers, ListModels ${
    (listHex.length / 1024).toFixed(0)
  } KiB, hex digests, safe ints (full scan)`,
  group: "go_json response",
  fn() {
    quoteUnsafeIntegers(listHex);
  },
});

Deno.bench({
  name: `response: quoteUnsafeIntegers, ListModels ${
    (listUnsafe.length / 1024).toFixed(0)
  } KiB, 2,000 unsafe ints (rewrites)`,
  group: "go_json response",
  fn() {
    quoteUnsafeIntegers(listUnsafe);
  },
});

Deno.bench({
  name: "response: quoteUnsafeIntegers of one decode chunk",
  group: "go_json response",
  fn() {
    quoteUnsafeIntegers(decodeChunkText);
  },
});

// ---------------------------------------------------------------------------
// CPU: buildContext for a 20-turn chat with tools.

const tools: ToolDefinition[] = [
  {
    name: "read_file",
    description: "Read a file from the workspace",
    parameters: { type: "object", properties: { path: { type: "string" } } },
  },
  {
    name: "search",
    description: "Search the code",
    parameters: { properties: { q: { type: "string" }, limit: { type: "integer" } } },
  },
];
const chat: ChatMessage[] = [{
  role: "system",
  content: "You are a careful coding assistant. ".repeat(20),
}];
for (let i = 0; i < 20; i++) {
  chat.push({ role: "user", content: `Question ${i}: why does the build fail? `.repeat(8) });
  if (i % 5 === 4) {
    chat.push({
      role: "assistant",
      content: "",
      toolCalls: [{ id: `call_${i}`, name: "read_file", arguments: { path: `src/f${i}.ts` } }],
    });
    chat.push({
      role: "tool",
      toolCallId: `call_${i}`,
      content: "export const x = 1;\n".repeat(30),
    });
  }
  chat.push({
    role: "assistant",
    content: `Answer ${i}: the import is wrong. Grüße ✓ `.repeat(10),
  });
}

Deno.bench({
  name: `buildContext, 20-turn chat (${chat.length} messages) with 2 tools`,
  group: "context",
  baseline: true,
  async fn() {
    await buildContext(chat, { tools });
  },
});

Deno.bench({
  name: "buildContext, 20-turn chat, no tools",
  group: "context",
  async fn() {
    await buildContext(chat.filter((m) => m.role !== "tool" && !m.toolCalls));
  },
});
