import assert from "node:assert/strict";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { DecodeChunkSchema } from "../gen/contenox/transport/v1/compute_pb.ts";
import { ErrorInfoSchema } from "../gen/google/rpc/error_details_pb.ts";
import {
  AbortedError,
  ConnectionError,
  ContextOverflowError,
  DAEMON_ERROR_TOKENS,
  DaemonError,
  DaemonInternalError,
  DaemonTooOldError,
  ManifestMismatchError,
  ModelLoadFailedError,
  SessionClosedError,
  SlotGenerationStaleError,
  TimeoutError,
} from "./errors.ts";
import { fromRpcError, fromStreamErrorChunk } from "./rpc_errors.ts";

const ctx = { rpc: "OpenSession", endpoint: "127.0.0.1:40517" };

Deno.test("every daemon token maps to its own class and keeps the detail", () => {
  for (const token of DAEMON_ERROR_TOKENS) {
    const err = fromRpcError(
      new ConnectError(`${token}: something broke: x`, Code.FailedPrecondition),
      ctx,
    );
    assert.ok(err instanceof DaemonError, token);
    assert.equal((err as DaemonError).token, token);
    assert.equal(err.code, token);
    assert.equal((err as DaemonError).detail, "something broke: x");
    assert.equal((err as DaemonError).grpcCode, Code.FailedPrecondition);
    assert.match(err.message, new RegExp(`^OpenSession failed: ${token}: something broke`));
  }
});

Deno.test("tokens are distinct classes, not one class with a field", () => {
  const classes = new Set(
    DAEMON_ERROR_TOKENS.map((t) =>
      fromRpcError(new ConnectError(`${t}: x`, Code.Internal), ctx).constructor
    ),
  );
  assert.equal(classes.size, DAEMON_ERROR_TOKENS.length);
});

Deno.test("model_load_failed wrapping keeps the first token (daemon table order)", () => {
  const err = fromRpcError(
    new ConnectError(
      "model_load_failed: modeld failed to load model: model type not served by this modeld backend",
      Code.Internal,
    ),
    ctx,
  );
  assert.ok(err instanceof ModelLoadFailedError);
});

Deno.test("context_overflow reads its counts from the ErrorInfo detail", () => {
  const info = create(ErrorInfoSchema, {
    reason: "context_overflow",
    domain: "contenox.transport",
    metadata: { stage: "prefix", resident_tokens: "2", additional_tokens: "5", num_ctx: "4" },
  });
  const wire = new ConnectError(
    "context_overflow: exceeded the session context window during prefix: resident_tokens=2 additional_tokens=5 num_ctx=4",
    Code.ResourceExhausted,
  );
  wire.details.push({ type: "google.rpc.ErrorInfo", value: toBinary(ErrorInfoSchema, info) });
  const err = fromRpcError(wire, ctx);
  assert.ok(err instanceof ContextOverflowError);
  assert.deepEqual(
    [err.stage, err.residentTokens, err.additionalTokens, err.numCtx],
    ["prefix", 2, 5, 4],
  );
});

Deno.test("context_overflow without a detail has zero counts (v0.32.3, memory service)", () => {
  const err = fromRpcError(
    new ConnectError(
      "context_overflow: exceeded the session context window",
      Code.ResourceExhausted,
    ),
    ctx,
  );
  assert.ok(err instanceof ContextOverflowError);
  assert.deepEqual([err.stage, err.numCtx], ["", 0]);
});

Deno.test("a foreign ErrorInfo reason is ignored; bad metadata counts read as 0", () => {
  const wire = new ConnectError(
    "context_overflow: exceeded the session context window",
    Code.ResourceExhausted,
  );
  const other = create(ErrorInfoSchema, { reason: "other", metadata: { num_ctx: "9" } });
  const odd = create(ErrorInfoSchema, {
    reason: "context_overflow",
    metadata: { num_ctx: "many", stage: "decode" },
  });
  wire.details.push({ type: "google.rpc.ErrorInfo", value: toBinary(ErrorInfoSchema, other) });
  wire.details.push({ type: "google.rpc.ErrorInfo", value: toBinary(ErrorInfoSchema, odd) });
  const err = fromRpcError(wire, ctx) as ContextOverflowError;
  assert.deepEqual([err.stage, err.numCtx], ["decode", 0]);
});

Deno.test("unknown method means the daemon predates the RPC and says which version added it", () => {
  const err = fromRpcError(
    new ConnectError(
      "unknown method Status for service contenox.transport.v1.Compute",
      Code.Unimplemented,
    ),
    { rpc: "Status", endpoint: "x:1" },
  );
  assert.ok(err instanceof DaemonTooOldError);
  assert.equal(err.requiredVersion, "v0.32.4");
  assert.match(err.message, /v0\.32\.4/);
});

Deno.test("transport failures: unavailable, deadline, internal", () => {
  assert.ok(
    fromRpcError(new ConnectError("connect ECONNREFUSED", Code.Unavailable), ctx) instanceof
      ConnectionError,
  );
  assert.ok(
    fromRpcError(new ConnectError("deadline", Code.DeadlineExceeded), ctx) instanceof TimeoutError,
  );
  const internal = fromRpcError(
    new ConnectError("internal: modeld: no local inference backend", Code.Internal),
    ctx,
  );
  assert.ok(internal instanceof DaemonInternalError);
  assert.equal(internal.code, "internal");
  assert.ok(!internal.retryable);
});

Deno.test("a caller abort is AbortedError; an AbortSignal.timeout reason is TimeoutError", () => {
  const user = new AbortController();
  user.abort();
  assert.ok(
    fromRpcError(new ConnectError("x", Code.Canceled), { ...ctx, signal: user.signal }) instanceof
      AbortedError,
  );
  const timed = new AbortController();
  timed.abort(new DOMException("t", "TimeoutError"));
  assert.ok(
    fromRpcError(new ConnectError("x", Code.Canceled), { ...ctx, signal: timed.signal }) instanceof
      TimeoutError,
  );
});

Deno.test("stream error chunk with token and detail (v0.33+)", () => {
  const err = fromStreamErrorChunk(create(DecodeChunkSchema, {
    error:
      "exceeded the session context window during decode: resident_tokens=3 additional_tokens=1 num_ctx=4",
    errorToken: "context_overflow",
    errorDetail: { stage: "decode", residentTokens: 3, additionalTokens: 1, numCtx: 4 },
  }));
  assert.ok(err instanceof ContextOverflowError);
  assert.deepEqual([err.stage, err.residentTokens, err.additionalTokens, err.numCtx], [
    "decode",
    3,
    1,
    4,
  ]);
  assert.equal((err as DaemonError).grpcCode, 0);
});

Deno.test("stream error chunk keeps slot_generation_stale and manifest_mismatch classes", () => {
  assert.ok(
    fromStreamErrorChunk(
      create(DecodeChunkSchema, {
        error: "stale modeld slot generation",
        errorToken: "slot_generation_stale",
      }),
    ) instanceof
      SlotGenerationStaleError,
  );
  assert.ok(
    fromStreamErrorChunk(
      create(DecodeChunkSchema, {
        error: "contextasm: context manifest mismatch: x",
        errorToken: "manifest_mismatch",
      }),
    ) instanceof
      ManifestMismatchError,
  );
});

Deno.test("v0.32.3 token-less stream errors are classified by sentinel text, never lost", () => {
  const closed = fromStreamErrorChunk(create(DecodeChunkSchema, { error: "session is closed" }));
  assert.ok(closed instanceof SessionClosedError);
  const overflow = fromStreamErrorChunk(create(DecodeChunkSchema, {
    error:
      "exceeded the session context window during decode: resident_tokens=3 additional_tokens=1 num_ctx=4",
  })) as ContextOverflowError;
  assert.ok(overflow instanceof ContextOverflowError);
  assert.equal(overflow.numCtx, 4, "counts parsed from the text");
  const other = fromStreamErrorChunk(create(DecodeChunkSchema, { error: "llama: decode failed" }));
  assert.ok(other instanceof DaemonInternalError);
  assert.match(other.message, /llama: decode failed/);
});
