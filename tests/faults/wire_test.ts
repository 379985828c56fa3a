/**
 * Wire fidelity faults (issue 8, items 13 to 15): what a real daemon sends or
 * accepts that the client used to mistype, and Go `int` fields beyond int32.
 */
import assert from "node:assert/strict";
import { Code, ConnectError } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { DecodeChunkSchema } from "../../gen/contenox/transport/v1/compute_pb.ts";
import {
  ContextOverflowError,
  ModeldClient,
  type ModeldError,
  Session,
  SessionClosedError,
} from "../../mod.ts";
import { fromRpcError, fromStreamErrorChunk } from "../../lib/rpc_errors.ts";
import { ExitCode, exitCodeFor } from "../../lib/cli/exit_codes.ts";
import { startTestDaemon } from "../../testing.ts";
import { dial } from "../../lib/transport.ts";

const model = { name: "m", type: "llama", path: "/models/m.gguf" };

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
