/**
 * The test daemon under load (issue 8, item 16): 50 sessions on one
 * connection whose decodes are cancelled mid-stream, while 500 unrelated calls
 * run on the same connection. Not one unrelated call may be reset.
 */

import assert from "node:assert/strict";
import { ModeldClient, type Session } from "../../mod.ts";
import { startTestDaemon } from "../../testing.ts";

const model = { name: "tiny", type: "llama", path: "/models/tiny.gguf" };

Deno.test("item 16: cancelled decodes never reset unrelated streams on the test daemon", async () => {
  await using daemon = await startTestDaemon({
    version: "v0.32.3",
    chunkDelayMs: 0,
    reply: "lorem ipsum ".repeat(20_000),
  });
  await using client = new ModeldClient({ dataRoot: daemon.dataRoot });
  const start = performance.now();
  const sessions: Session[] = await Promise.all(
    Array.from({ length: 50 }, () => client.openSession(model, { config: { numCtx: 100_000 } })),
  );
  const failures: string[] = [];
  const cancelled = sessions.map(async (session) => {
    for (let round = 0; round < 10; round++) {
      const stream = session.decode({ maxTokens: 10_000 });
      let n = 0;
      setTimeout(() => stream.cancel(), round % 5); // some before the first chunk
      for await (const _ of stream) {
        if (++n === 200) break; // resets this stream: the daemon stops generating
      }
    }
  });
  const unrelated = Array.from({ length: 500 }, async (_, i) => {
    try {
      const session = sessions[i % sessions.length];
      if (i % 2 === 0) await session.explainContext({ timeoutMs: 30_000 });
      else await session.decode({ maxTokens: 50 }, { timeoutMs: 30_000 }).collect();
    } catch (err) {
      failures.push(String(err));
    }
  });
  await Promise.all([...cancelled, ...unrelated]);
  await Promise.all(sessions.map((s) => s.close()));
  const elapsed = performance.now() - start;
  assert.deepEqual(failures, [], `${failures.length} of 500 unrelated calls failed`);
  assert.ok(elapsed < 30_000, `took ${elapsed.toFixed(0)} ms`);
});
