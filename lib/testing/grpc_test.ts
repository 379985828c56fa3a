// The Go project's runtime/transport/grpc/grpc_test.go checklist (contract
// §10.1), run against the test daemon through the client's own transport.

import { create } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import assert from "node:assert/strict";
import {
  type ContextManifest,
  ContextManifestSchema,
} from "../../gen/contenox/transport/v1/compute_pb.ts";
import { ContextOverflowError } from "../errors.ts";
import { fromRpcError } from "../rpc_errors.ts";
import { dial } from "../transport.ts";
import { startTestDaemon } from "./daemon.ts";
import type { DaemonVersion } from "../daemon/sentinels.ts";
import { modelFile, rejects } from "./_test_support.ts";

const MODEL = await modelFile();

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function manifest(stable: string): Promise<ContextManifest> {
  return create(ContextManifestSchema, {
    backend: "mem",
    modelDigest: "d1",
    promptFormat: "f1",
    promptTemplateDigest: "t1",
    runtimeDigest: "r1",
    stableByteHash: await sha256Hex(stable),
  });
}

for (const version of ["v0.32.3", "v0.36.0"] as DaemonVersion[]) {
  Deno.test(`round trip over the wire (${version})`, async () => {
    await using daemon = await startTestDaemon({ version });
    await using conn = dial(daemon.endpoint, daemon.instanceId);
    const rpc = conn.rpc;

    const health = await rpc.health({});
    assert.equal(health.instanceId, daemon.instanceId);
    assert.equal(health.ready, true);
    assert.equal(health.backend, "llama");

    const { handle } = await rpc.openSession({
      ownerInstanceId: daemon.instanceId,
      modelName: "m",
      path: MODEL,
      config: { numCtx: 100 },
    });
    assert.match(
      handle,
      version === "v0.32.3"
        ? new RegExp(`^${daemon.instanceId}/1$`)
        : new RegExp(`^${daemon.instanceId}/1/1$`),
    );
    assert.equal(daemon.openSessions, 1);

    const m = await manifest("hello");
    const cold = await rpc.ensurePrefix({ handle, prefix: { text: "hello", manifest: m } });
    assert.deepEqual([cold.reusedTokens, cold.prefilledTokens, cold.prefixTokens], [0, 5, 5]);
    assert.equal(cold.manifestDigest.length, 64);
    const warm = await rpc.ensurePrefix({ handle, prefix: { text: "hello", manifest: m } });
    assert.deepEqual([warm.reusedTokens, warm.prefilledTokens], [5, 0]);

    const suffix = await rpc.prefillSuffix({ handle, suffix: { text: " world", manifest: m } });
    assert.deepEqual([suffix.suffixTokens, suffix.residentTokens, suffix.availableTokens], [
      6,
      11,
      89,
    ]);

    const chunks = [];
    for await (const chunk of rpc.decode({ handle, config: { maxTokens: 3 } })) {
      assert.equal(chunk.error, "");
      chunks.push(chunk.text);
    }
    assert.deepEqual(chunks, ["x", "x", "x"]);

    const report = await rpc.explainContext({ handle });
    assert.equal(report.residentTokens, 11);
    assert.equal(report.numCtx, 100);
    assert.equal(report.closed, false);

    await rpc.closeSession({ handle });
    assert.equal(daemon.openSessions, 0);
    const err = await rejects(
      rpc.ensurePrefix({ handle, prefix: { text: "x", manifest: await manifest("x") } }),
    );
    assert.equal(err.code, Code.FailedPrecondition);
    assert.equal(err.rawMessage, "session_closed: session is closed");
    assert.equal(
      fromRpcError(err, { rpc: "EnsurePrefix", endpoint: daemon.endpoint }).code,
      "session_closed",
    );

    // The daemon saw the exact Go keys and the fence on every call but Health.
    const open = daemon.requests.find((r) => r.method === "OpenSession")!;
    assert.equal(open.fenceHeader, daemon.instanceId);
    assert.match(open.body, /"NumCtx":100/);
    assert.match(open.body, /"owner_instance_id":"/);
    assert.equal(daemon.requests[0].method, "Health");
    assert.equal(daemon.requests[0].fenceHeader, undefined);
    assert.equal(open.contentType, "application/grpc+contenoxtransportjson");
  });

  Deno.test(`stale fence (${version})`, async () => {
    await using daemon = await startTestDaemon({ version });
    await using conn = dial(daemon.endpoint, "wrong-owner");
    const err = await rejects(
      conn.rpc.openSession({ ownerInstanceId: "wrong-owner", modelName: "m", path: MODEL }),
    );
    assert.equal(err.code, Code.FailedPrecondition);
    assert.equal(err.rawMessage, "stale_fence: stale owner fence token");
    // Health answers anyone.
    assert.equal((await conn.rpc.health({})).instanceId, daemon.instanceId);
    // A handle from another instance is a stale fence too.
    await using good = dial(daemon.endpoint, daemon.instanceId);
    const foreign = await rejects(good.rpc.explainContext({ handle: "someone-else/1" }));
    assert.equal(foreign.rawMessage, "stale_fence: stale owner fence token");
  });

  Deno.test(`context overflow (${version})`, async () => {
    await using daemon = await startTestDaemon({ version });
    await using conn = dial(daemon.endpoint, daemon.instanceId);
    const { handle } = await conn.rpc.openSession({
      ownerInstanceId: daemon.instanceId,
      modelName: "m",
      path: MODEL,
      config: { numCtx: 4 },
    });
    const err = await rejects(
      conn.rpc.ensurePrefix({ handle, prefix: { text: "too many tokens" } }),
    );
    assert.equal(err.code, Code.ResourceExhausted);
    const typed = fromRpcError(err, { rpc: "EnsurePrefix", endpoint: daemon.endpoint });
    assert.equal(typed.code, "context_overflow");
    if (version === "v0.32.3") {
      assert.equal(err.rawMessage, "context_overflow: exceeded the session context window");
      assert.equal(err.details.length, 0);
    } else {
      assert.equal(
        err.rawMessage,
        "context_overflow: exceeded the session context window during prefix: " +
          "resident_tokens=0 additional_tokens=15 num_ctx=4",
      );
      assert.ok(typed instanceof ContextOverflowError);
      assert.equal(typed.stage, "prefix");
      assert.equal(typed.additionalTokens, 15);
      assert.equal(typed.numCtx, 4);
    }
  });
}
