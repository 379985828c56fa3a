/**
 * Remote endpoints (contract 10.3) against two real Go transport servers:
 * independent connections per backend id, target routing to exactly the named
 * node, the empty target falling back to the lease's node, and the cache.
 */
import assert from "node:assert/strict";
import { ModeldClient, RemoteNode } from "../../mod.ts";
import { PEER_VERSION, startPeer } from "./peers.ts";

const T = `[peer ${PEER_VERSION} slot]`;
const embedModel = { name: "embed", type: "llama", path: "/models/embed.gguf" };

Deno.test(`${T} two backend ids: independent connections, routing to exactly the named node`, async () => {
  await using a = await startPeer({ mode: "slot" });
  await using b = await startPeer({ mode: "slot" });
  await using client = new ModeldClient({ dataRoot: a.dataRoot });

  const nodeA = await client.endpoint("a", a.endpoint);
  const nodeB = await client.endpoint("b", b.endpoint);
  assert.ok(nodeA instanceof RemoteNode && nodeB instanceof RemoteNode);
  assert.deepEqual([nodeA.instanceId, nodeA.backend, nodeA.ready], [a.instanceId, "llama", true]);
  assert.equal(nodeB.instanceId, b.instanceId);
  assert.equal(await client.endpoint("a", a.endpoint), nodeA, "a healthy cached node is reused");
  assert.equal((await nodeA.status()).ownerInstanceId, a.instanceId);
  assert.deepEqual(await nodeB.listModels(), []);

  // Embed through B's target: B serves it, A sees no Embed at all.
  const target = await client.node({ backendId: "b", endpoint: b.endpoint });
  assert.deepEqual(await target.embed(embedModel, "route me"), [1, 2.5, -3]);
  const embeds = async (p: typeof a) =>
    (await p.log()).filter((e) => e.layer === "svc" && e.method === "Embed").length;
  assert.equal(await embeds(b), 1);
  assert.equal(await embeds(a), 0);

  // The empty target is the local node behind the lease (A).
  const local = await client.node({ backendId: "local", endpoint: "" });
  assert.deepEqual(await local.embed(embedModel, "local"), [1, 2.5, -3]);
  assert.equal(await embeds(a), 1);
  assert.equal(await client.localEndpointAddr(), a.endpoint);
  assert.equal(
    (await client.endpoint("lease", await client.localEndpointAddr())).instanceId,
    a.instanceId,
  );

  // Closing B leaves A untouched; B re-dials afterwards.
  client.closeEndpoint("b");
  client.closeEndpoint("b");
  assert.equal((await nodeA.health()).instanceId, a.instanceId);
  const again = await client.endpoint("b", b.endpoint);
  assert.notEqual(again, nodeB);
  assert.equal((await again.health()).instanceId, b.instanceId);
});
