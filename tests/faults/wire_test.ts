/**
 * Wire fidelity faults (issue 8, items 13 to 15): what a real daemon sends or
 * accepts that the client used to mistype, and Go `int` fields beyond int32.
 */
import assert from "node:assert/strict";
import { Code, ConnectError } from "@connectrpc/connect";
import { create, fromJson } from "@bufbuild/protobuf";
import {
  DecodeChunkSchema,
  DecodeRequestSchema,
  OpenSessionRequestSchema,
  PrefixStatusSchema,
} from "../../gen/contenox/transport/v1/compute_pb.ts";
import { envelopeOf } from "../../lib/envelope.ts";
import { goJson, quoteUnsafeIntegers } from "../../lib/go_json.ts";
import {
  ContextOverflowError,
  InvalidArgumentError,
  ModeldClient,
  type ModeldError,
  Session,
  SessionClosedError,
} from "../../mod.ts";
import { fromRpcError, fromStreamErrorChunk } from "../../lib/rpc_errors.ts";
import { ExitCode, exitCodeFor } from "../../lib/cli/exit_codes.ts";
import { startTestDaemon } from "../../testing.ts";
import { dial } from "../../lib/transport.ts";
import { modelFile } from "../../lib/testing/_test_support.ts";

// The test daemon, like modeld, loads only model files that exist.
const model = { name: "m", type: "llama", path: await modelFile() };

// Item 15: v0.32.3's llama backend errors are not transport sentinels, so they
// cross the wire as INTERNAL "internal: llama: …" (contract 6.2).
Deno.test("item 15: v0.32.3 llama overflow text is a ContextOverflowError with its counts (CLI exit 6)", () => {
  const text =
    "internal: llama: context overflow during prefix: resident_tokens=0 additional_tokens=14 num_ctx=4096";
  const err = fromRpcError(new ConnectError(text, Code.Internal), {
    rpc: "EnsurePrefix",
    endpoint: "127.0.0.1:1",
  });
  assert.ok(err instanceof ContextOverflowError, `${err.name}: ${err.message}`);
  assert.deepEqual(
    [err.stage, err.residentTokens, err.additionalTokens, err.numCtx],
    ["prefix", 0, 14, 4096],
  );
  assert.equal(err.grpcCode, Code.Internal);
  assert.equal(exitCodeFor(err), ExitCode.Daemon);
  // The same error inside a v0.32.3 Decode stream: the raw text, no "internal: ".
  const chunk = fromStreamErrorChunk(create(DecodeChunkSchema, {
    error:
      "llama: context overflow during decode: resident_tokens=4095 additional_tokens=1 num_ctx=4096",
  }));
  assert.ok(chunk instanceof ContextOverflowError);
  assert.deepEqual([chunk.stage, chunk.numCtx], ["decode", 4096]);
});

Deno.test("item 15: v0.32.3 llama 'session closed' is a SessionClosedError", () => {
  const err = fromRpcError(
    new ConnectError("internal: llama: session closed", Code.Internal),
    { rpc: "EnsurePrefix", endpoint: "127.0.0.1:1" },
  );
  assert.ok(err instanceof SessionClosedError, `${err.name}: ${err.message}`);
  assert.equal(err.retryable, true);
});

// Item 14: Go's ExplainContext returns ContextReport{Closed: true} on any error.
Deno.test("item 14: explainContext on a handle the daemon dropped reports closed: true, as Go", async () => {
  await using daemon = await startTestDaemon();
  await using client = new ModeldClient({ dataRoot: daemon.dataRoot });
  const session = await client.openSession(model, { config: { numCtx: 100 } });
  assert.equal((await session.explainContext()).closed, false);
  using conn = dial(daemon.endpoint, daemon.instanceId);
  await new Session(conn, session.handle).close(); // the daemon drops the handle
  const report = await session.explainContext();
  assert.equal(report.closed, true);
  await session.close();
  // Closed locally too: Go asks the daemon and gets session_closed, so closed: true.
  assert.equal((await session.explainContext()).closed, true);
});

Deno.test("item 14: explainContext after the connection is gone reports closed: true", async () => {
  const daemon = await startTestDaemon();
  await using client = new ModeldClient({ dataRoot: daemon.dataRoot });
  const session = await client.openSession(model, { config: { numCtx: 100 } });
  await daemon.stop();
  let report;
  try {
    report = await session.explainContext({ timeoutMs: 5_000 });
  } catch (err) {
    assert.fail(`threw ${(err as ModeldError).name}: ${(err as Error).message}`);
  }
  assert.equal(report.closed, true);
});

// Item 13: Go `int` is 64-bit. The daemon accepts NumCtx 2^32 and answers
// AvailableTokens 4294967294; the client must read that, accept exact integers
// up to 2^53 - 1, and refuse anything else before sending.
Deno.test("item 13: a Go int beyond int32 is sent bare and decoded exactly", () => {
  const req = create(OpenSessionRequestSchema, {
    modelName: "m",
    type: "llama",
    config: { numCtx: 2 ** 32 },
  });
  const text = goJson(OpenSessionRequestSchema, req);
  assert.match(text, /"NumCtx":4294967296\b/);
  const status = fromJson(
    PrefixStatusSchema,
    JSON.parse(quoteUnsafeIntegers(
      '{"ReusedTokens":0,"PrefilledTokens":2,"AvailableTokens":4294967294,"ResidentTokens":9007199254740991}',
    )),
    { ignoreUnknownFields: true },
  );
  assert.equal(status.availableTokens, 4294967294);
  assert.equal(status.residentTokens, Number.MAX_SAFE_INTEGER);
});

Deno.test("item 13: Go ints that are not exact integers up to 2^53 - 1 are refused before sending", () => {
  for (const numCtx of [2 ** 53, 2 ** 64, -(2 ** 53), 1.5, Number.NaN, Infinity]) {
    const req = create(OpenSessionRequestSchema, { config: { numCtx } });
    assert.throws(
      () => goJson(OpenSessionRequestSchema, req),
      (err: unknown) =>
        err instanceof InvalidArgumentError && /NumCtx|num_ctx/.test(err.message) &&
        /integer/.test(err.message),
      String(numCtx),
    );
  }
  // Floats stay floats: a fractional temperature is fine.
  const d = create(DecodeRequestSchema, {
    handle: "h",
    config: { temperature: 0.7, maxTokens: 3 },
  });
  assert.match(goJson(DecodeRequestSchema, d), /"Temperature":0\.7/);
});

Deno.test("item 13: through the test daemon, numCtx 2^32 round-trips and 2^53 is refused unsent", async () => {
  await using daemon = await startTestDaemon();
  await using client = new ModeldClient({ dataRoot: daemon.dataRoot });
  await using session = await client.openSession(model, { config: { numCtx: 2 ** 32 } });
  const prefix = await session.ensurePrefix({ text: "hello" });
  assert.equal(prefix.availableTokens, 2 ** 32 - 5);
  await assert.rejects(
    () => client.openSession(model, { config: { numCtx: 2 ** 53 } }),
    InvalidArgumentError,
  );
});

/** One raw unary gRPC call with a hand-written JSON body, as a non-TS client could send. */
async function rawUnary(endpoint: string, fence: string, method: string, json: string) {
  const { connect } = await import("node:http2");
  const session = connect(`http://${endpoint}`);
  try {
    const frame = envelopeOf(json);
    const req = session.request({
      ":method": "POST",
      ":path": `/contenox.transport.v1.Compute/${method}`,
      "content-type": "application/grpc+contenoxtransportjson",
      "te": "trailers",
      "x-contenox-owner-instance": fence,
    });
    const headers: Record<string, unknown> = {};
    req.on("response", (h) => Object.assign(headers, h));
    req.on("trailers", (h) => Object.assign(headers, h));
    req.end(frame);
    for await (const _ of req) { /* drain */ }
    return {
      status: Number(headers["grpc-status"]),
      message: decodeURIComponent(String(headers["grpc-message"] ?? "")),
    };
  } finally {
    session.close();
  }
}

Deno.test("item 13: the test daemon refuses a fractional Go int as Go's json.Unmarshal does", async () => {
  await using daemon = await startTestDaemon();
  const open = (numCtx: string) =>
    rawUnary(
      daemon.endpoint,
      daemon.instanceId,
      "OpenSession",
      `{"owner_instance_id":"${daemon.instanceId}","model_name":"m","type":"llama","path":${
        JSON.stringify(model.path)
      },"config":{"NumCtx":${numCtx}}}`,
    );
  const bad = await open("1.5");
  assert.equal(bad.status, Code.Internal);
  assert.match(
    bad.message,
    /cannot unmarshal number 1\.5 into Go struct field .*NumCtx of type int/,
  );
  const huge = await open("1e400");
  assert.equal(huge.status, Code.Internal);
  const ok = await open("4294967296");
  assert.equal(ok.status, 0, ok.message);
});
