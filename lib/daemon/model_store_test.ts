// HEAD model store RPCs (ListModels, RemoveModel, DiskStats, PushModel) and
// name-based path resolution, through the wire.

import { Code } from "@connectrpc/connect";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { PushModelChunkSchema } from "../../gen/contenox/transport/v1/compute_pb.ts";
import { dial } from "../transport.ts";
import { startTestDaemon } from "../testing/daemon.ts";
import { rejects } from "../testing/_test_support.ts";

type ChunkInit = MessageInitShape<typeof PushModelChunkSchema>;

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

async function* frames(
  manifest: ChunkInit["manifest"],
  data: Uint8Array,
  frameBytes = 4 * 1024 * 1024,
): AsyncGenerator<ChunkInit> {
  yield { manifest, data: data.subarray(0, Math.min(frameBytes, data.length)) };
  for (let off = frameBytes; off < data.length; off += frameBytes) {
    yield { data: data.subarray(off, off + frameBytes) };
  }
}

Deno.test("ListModels, RemoveModel and DiskStats over a seeded store", async () => {
  await using daemon = await startTestDaemon({ models: { a: "weights-a" } });
  await using conn = dial(daemon.endpoint, daemon.instanceId);
  const { models } = await conn.rpc.listModels({});
  assert.equal(models.length, 1);
  assert.equal(models[0].name, "a");
  assert.equal(models[0].type, "llama");
  assert.equal(models[0].sizeBytes, 9n);
  assert.equal(models[0].digest, sha256(new TextEncoder().encode("weights-a")));

  const disk = await conn.rpc.diskStats({});
  assert.ok(disk.totalBytes > 0n);
  assert.ok(disk.freeBytes <= disk.totalBytes);

  await conn.rpc.removeModel({ name: "a" });
  assert.deepEqual((await conn.rpc.listModels({})).models, []);
  const missing = await rejects(conn.rpc.removeModel({ name: "a" }));
  assert.equal(missing.code, Code.NotFound);
  assert.equal(missing.rawMessage, "model_not_found: model not found in modeld's local store");
});

Deno.test("admin RPCs are fenced", async () => {
  await using daemon = await startTestDaemon();
  await using conn = dial(daemon.endpoint, "wrong");
  const stale = "stale_fence: stale owner fence token";
  assert.equal((await rejects(conn.rpc.listModels({}))).rawMessage, stale);
  assert.equal((await rejects(conn.rpc.removeModel({ name: "a" }))).rawMessage, stale);
  assert.equal((await rejects(conn.rpc.diskStats({}))).rawMessage, stale);
  const push = conn.rpc.pushModel(
    frames({ name: "a", type: "llama", format: "file" }, new Uint8Array(3)),
  );
  assert.equal((await rejects(push)).rawMessage, stale);
});

Deno.test("PushModel writes, dedupes, verifies digests and refuses unknown types", async () => {
  await using daemon = await startTestDaemon();
  await using conn = dial(daemon.endpoint, daemon.instanceId);
  const rpc = conn.rpc;
  const body = new Uint8Array(16 * 1024 * 1024 + 7).map((_, i) => (i * 31) & 0xff);
  const digest = sha256(body);

  const first = await rpc.pushModel(
    frames({ name: "big", type: "llama", format: "file", digest }, body),
  );
  assert.equal(first.bytesWritten, BigInt(body.length));
  assert.equal(first.alreadyPresent, false);
  const written = await Deno.readFile(join(daemon.modelsDir, "big", "model.gguf"));
  assert.equal(sha256(written), digest, "reassembled byte-exact across 4 MiB frames");

  const again = await rpc.pushModel(
    frames({ name: "big", type: "llama", format: "file", digest }, body),
  );
  assert.equal(again.alreadyPresent, true);

  const small = new TextEncoder().encode("tiny");
  const bad = await rejects(
    rpc.pushModel(frames({ name: "tiny", type: "llama", format: "file", digest: "00" }, small)),
  );
  assert.equal(bad.code, Code.FailedPrecondition);
  assert.match(
    bad.rawMessage,
    /^digest_mismatch: model content digest mismatch: model tiny want=00 got=/,
  );

  const started = Date.now();
  const ollama = await rejects(
    rpc.pushModel(
      frames({ name: "o", type: "ollama", format: "file" }, new Uint8Array(1024 * 1024), 64 * 1024),
    ),
  );
  assert.ok(Date.now() - started < 10_000);
  assert.equal(ollama.code, Code.InvalidArgument);
  assert.equal(
    ollama.rawMessage,
    'unsupported_model_type: unsupported model backend type: "ollama"',
  );

  const noManifest = await rejects(rpc.pushModel((async function* (): AsyncGenerator<ChunkInit> {
    yield { data: small };
  })()));
  assert.equal(noManifest.code, Code.Internal);
  assert.equal(
    noManifest.rawMessage,
    "internal: modeld transport: PushModel stream missing manifest on first frame",
  );

  // No staging directories left behind.
  const names = [];
  for await (const e of Deno.readDir(daemon.modelsDir)) names.push(e.name);
  assert.deepEqual(names.sort(), ["big"]);
  const request = daemon.requests.find((r) => r.method === "PushModel")!;
  assert.ok(request.messages >= 5);
  assert.match(request.body, /"manifest":\{"name":"big"/);
});

Deno.test("a request without a path resolves in the store; the resident model cannot be removed", async () => {
  const weights = new TextEncoder().encode("weights-q");
  await using daemon = await startTestDaemon({ models: { q: weights } });
  await using conn = dial(daemon.endpoint, daemon.instanceId);
  const rpc = conn.rpc;
  const id = daemon.instanceId;

  const missing = await rejects(
    rpc.openSession({ ownerInstanceId: id, modelName: "nope", type: "llama" }),
  );
  assert.equal(missing.code, Code.NotFound);
  assert.equal(
    missing.rawMessage,
    "model_not_found: model not found in modeld's local store: nope (llama)",
  );
  const untyped = await rejects(rpc.openSession({ ownerInstanceId: id, modelName: "q" }));
  assert.equal(untyped.code, Code.InvalidArgument);
  assert.equal(untyped.rawMessage, 'unsupported_model_type: unsupported model backend type: ""');
  const wrongDigest = await rejects(
    rpc.openSession({ ownerInstanceId: id, modelName: "q", type: "llama", digest: "ab" }),
  );
  assert.match(wrongDigest.rawMessage, /^digest_mismatch: /);

  const { handle } = await rpc.openSession({
    ownerInstanceId: id,
    modelName: "q",
    type: "llama",
    digest: sha256(weights),
  });
  assert.equal((await rpc.status({})).active?.path, join(daemon.modelsDir, "q", "model.gguf"));
  const busy = await rejects(rpc.removeModel({ name: "q" }));
  assert.equal(
    busy.rawMessage,
    'model_busy: cannot remove model "q": modeld active model slot is busy',
  );
  await rpc.closeSession({ handle });
});
