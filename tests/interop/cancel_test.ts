/**
 * Issue 8, item 16, against the real grpc-go server: after a Decode is
 * cancelled while the daemon is still sending, the next call succeeds. Deno
 * 2.9.3's node:http2 client failed it with RST_STREAM CANCEL without sending
 * it (bench/h2_cancel_repro.ts; 268 of 300 rounds here), which the client
 * used to retry; its own HTTP/2 session (lib/h2/session.ts) has no such fault.
 */
import assert from "node:assert/strict";
import { RemoteNode } from "../../mod.ts";
import { dial } from "../../lib/transport.ts";
import { PEER_VERSION, startPeer } from "./peers.ts";

Deno.test(`[peer ${PEER_VERSION} memory] a call right after a cancelled decode succeeds`, async () => {
  await using peer = await startPeer({ mode: "memory" });
  using conn = dial(peer.endpoint, peer.instanceId);
  const node = new RemoteNode("peer", conn, "llama");
  const failures: string[] = [];
  for (let round = 0; round < 60; round++) {
    try {
      const session = await node.openSession({ name: "m", path: "/m" }, {
        config: { numCtx: 1_000_000 },
      });
      await session.ensurePrefix({ text: "hello" });
      await session.prefillSuffix({ text: " world" });
      let chunks = 0;
      for await (const _ of session.decode({ maxTokens: 100_000 })) {
        if (++chunks === 50) break; // cancels the stream while the daemon still sends
      }
      await node.health({ timeoutMs: 5_000 });
      await session.close();
    } catch (err) {
      failures.push(`round ${round}: ${err}`);
    }
  }
  assert.deepEqual(failures, []);
});
