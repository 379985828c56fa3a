// HEAD single-slot rules (contract §8.5), through the wire.

import { Code } from "@connectrpc/connect";
import assert from "node:assert/strict";
import { dial } from "../transport.ts";
import { startTestDaemon } from "../testing/daemon.ts";
import { modelFile, rejects } from "../testing/_test_support.ts";

const MODEL_A = await modelFile("a.gguf");
const MODEL_B = await modelFile("b.gguf");

Deno.test("slot control: load, status, busy, switch, unload with generations", async () => {
  await using daemon = await startTestDaemon();
  await using conn = dial(daemon.endpoint, daemon.instanceId);
  const rpc = conn.rpc;
  const id = daemon.instanceId;
  const a = { modelName: "a", type: "llama", path: MODEL_A, config: { numCtx: 64 } };
  const b = { modelName: "b", type: "llama", path: MODEL_B, config: { numCtx: 64 } };

  assert.equal((await rpc.status({})).state, "Empty");
  const loaded = await rpc.loadModel({ ...a }); // owner filled in by the server
  assert.equal(loaded.generation, 1n);
  const status = await rpc.status({});
  assert.equal(status.state, "Ready");
  assert.equal(status.ownerInstanceId, id);
  assert.equal(status.backend, "llama");
  assert.equal(status.active?.generation, 1n);
  assert.equal(status.active?.config?.numCtx, 64);

  const { handle } = await rpc.openSession({ ownerInstanceId: id, ...a });
  assert.equal(handle, `${id}/1/1`);
  const busy = await rejects(rpc.loadModel({ ...b }));
  assert.equal(busy.rawMessage, "model_busy: modeld active model slot is busy");
  const second = await rejects(rpc.openSession({ ownerInstanceId: id, ...a }));
  assert.equal(second.rawMessage, "model_busy: modeld active model slot is busy");
  const embedBusy = await rejects(rpc.embed({ ownerInstanceId: id, ...a, text: "x" }));
  assert.equal(embedBusy.rawMessage, "model_busy: modeld active model slot is busy");
  await rpc.closeSession({ handle });

  // Explicitly loaded and idle: another model needs LoadModel first.
  const sw = await rejects(rpc.openSession({ ownerInstanceId: id, ...b }));
  assert.equal(sw.code, Code.FailedPrecondition);
  assert.equal(sw.rawMessage, "model_switch_required: modeld active model slot must be switched");

  const stale = await rejects(rpc.unloadModel({ expectedGeneration: 7n }));
  assert.equal(stale.rawMessage, "slot_generation_stale: stale modeld slot generation");
  await rpc.unloadModel({ expectedGeneration: loaded.generation });
  assert.equal((await rpc.status({})).state, "Empty");
  assert.equal((await rpc.status({})).active, undefined);

  // A switch bumps the generation twice (close old, load new); old handles go stale.
  const { handle: h2 } = await rpc.openSession({ ownerInstanceId: id, ...b });
  assert.equal(h2, `${id}/3/2`);
  await rpc.closeSession({ handle: h2 });
  const switched = await rpc.loadModel({ ...a, expectedGeneration: 3n });
  assert.equal(switched.generation, 5n);
  const old = await rejects(rpc.ensurePrefix({ handle: h2, prefix: { text: "x" } }));
  assert.equal(old.rawMessage, "session_closed: session is closed", "closed handle is unknown");
});

Deno.test("an idle implicit model is reused warm and evicted by Embed", async () => {
  await using daemon = await startTestDaemon({ embedding: (text) => [text.length, 2.5, -3] });
  await using conn = dial(daemon.endpoint, daemon.instanceId);
  const rpc = conn.rpc;
  const id = daemon.instanceId;
  const a = {
    ownerInstanceId: id,
    modelName: "a",
    type: "llama",
    path: MODEL_A,
    config: { numCtx: 64 },
  };

  const first = await rpc.openSession(a);
  await rpc.ensurePrefix({ handle: first.handle, prefix: { text: "hello" } });
  await rpc.closeSession({ handle: first.handle });
  assert.equal(daemon.slotState(), "Ready", "closing keeps the model resident");

  const second = await rpc.openSession(a);
  assert.equal(second.handle, `${id}/1/2`);
  const warm = await rpc.ensurePrefix({ handle: second.handle, prefix: { text: "hello" } });
  assert.equal(warm.reusedTokens, 5, "same identity reopened warm");
  await rpc.closeSession({ handle: second.handle });

  const { vector } = await rpc.embed({ ...a, text: "abcd" });
  assert.deepEqual(vector, [4, 2.5, -3]);
  assert.equal((await rpc.status({})).active, undefined, "the idle implicit model was evicted");
  assert.equal((await rpc.openSession(a)).handle, `${id}/3/3`);
});

Deno.test("body fence, backend mismatch and Describe at v0.36", async () => {
  await using daemon = await startTestDaemon();
  await using conn = dial(daemon.endpoint, daemon.instanceId);
  const rpc = conn.rpc;
  const req = { modelName: "a", type: "llama", path: MODEL_A, config: { numCtx: 128 } };

  const noBody = await rejects(rpc.openSession(req));
  assert.equal(noBody.rawMessage, "stale_fence: stale owner fence token");
  const describeNoBody = await rejects(rpc.describe(req));
  assert.equal(describeNoBody.rawMessage, "stale_fence: stale owner fence token");

  const info = await rpc.describe({ ...req, ownerInstanceId: daemon.instanceId });
  assert.deepEqual(
    [
      info.modelMaxContext,
      info.effectiveContext,
      info.hotContextTokens,
      info.plannerEffectiveContext,
    ],
    [128, 128, 128, 128],
  );

  const ov = { ...req, type: "openvino", ownerInstanceId: daemon.instanceId };
  const load = await rejects(rpc.openSession(ov));
  assert.equal(load.code, Code.Internal);
  assert.equal(
    load.rawMessage,
    'model_load_failed: modeld failed to load model: model type not served by this modeld backend: requested "openvino", this daemon serves llama',
  );
  assert.equal((await rpc.status({})).state, "Failed");
  const describe = await rejects(rpc.describe(ov));
  assert.equal(describe.code, Code.FailedPrecondition);
  assert.match(describe.rawMessage, /^backend_mismatch: /);

  const noEmbed = await rejects(
    rpc.embed({ ...req, ownerInstanceId: daemon.instanceId, text: "x" }),
  );
  assert.equal(noEmbed.code, Code.Unimplemented);
  assert.equal(noEmbed.rawMessage, "unsupported_feature: unsupported transport feature");
});

Deno.test("a Decode holds the slot: other calls wait for it", async () => {
  await using daemon = await startTestDaemon({ chunkDelayMs: 30 });
  await using conn = dial(daemon.endpoint, daemon.instanceId);
  const rpc = conn.rpc;
  const { handle } = await rpc.openSession({
    ownerInstanceId: daemon.instanceId,
    modelName: "a",
    path: MODEL_A,
  });
  const order: string[] = [];
  const decode = (async () => {
    for await (const _ of rpc.decode({ handle, config: { maxTokens: 3 } })) order.push("chunk");
    order.push("decode done");
  })();
  await new Promise((r) => setTimeout(r, 10));
  await rpc.explainContext({ handle });
  order.push("explain");
  await decode;
  // The explain answer came after every chunk (30 ms apart); its reply and the
  // decode's trailers arrive together, so which the client sees first is not the point.
  assert.deepEqual(order.slice(0, 3), ["chunk", "chunk", "chunk"]);
  assert.deepEqual(order.slice(3).sort(), ["decode done", "explain"]);
  await rpc.closeSession({ handle });
});
