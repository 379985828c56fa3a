/**
 * The test daemon under load (issue 8, item 16): 50 sessions on one
 * connection, each cancelling decodes mid-stream while unrelated calls run on
 * the same connection. Not one unrelated call may fail, and the whole load is
 * bounded in time.
 */

import assert from "node:assert/strict";
import { ModeldClient } from "../../mod.ts";
import { startTestDaemon } from "../../testing.ts";
import { modelFile } from "../../lib/testing/_test_support.ts";

const ROUNDS = 10;
// The test daemon, like modeld, loads only model files that exist.
const model = { name: "tiny", type: "llama", path: await modelFile("tiny.gguf") };

Deno.test("item 16: cancelled decodes never fail unrelated calls on the test daemon", async () => {
  // 3 KB per chunk, no delay: the daemon writes faster than the client reads.
  await using daemon = await startTestDaemon({
    version: "v0.32.3",
    chunkDelayMs: 0,
    reply: ("x".repeat(3000) + " ").repeat(2000),
  });
  await using client = new ModeldClient({ dataRoot: daemon.dataRoot });
  const start = performance.now();
  const sessions = await Promise.all(
    Array.from({ length: 50 }, () => client.openSession(model, { config: { numCtx: 100_000 } })),
  );
  const failures: string[] = [];
  let unrelated = 0;
  await Promise.all(sessions.map(async (session) => {
    for (let round = 0; round < ROUNDS; round++) {
      try {
        let n = 0;
        for await (const _ of session.decode({ maxTokens: 1000 }, { timeoutMs: 20_000 })) {
          if (++n === 20) break; // resets the stream: the daemon stops generating
        }
        await session.explainContext({ timeoutMs: 20_000 });
        unrelated++;
      } catch (err) {
        failures.push(String(err).slice(0, 200));
      }
    }
  }));
  await Promise.all(sessions.map((s) => s.close()));
  const elapsed = performance.now() - start;
  assert.deepEqual(
    [...new Set(failures)],
    [],
    `${failures.length} calls failed (${unrelated} unrelated calls succeeded)`,
  );
  assert.equal(unrelated, 50 * ROUNDS);
  assert.ok(elapsed < 60_000, `took ${elapsed.toFixed(0)} ms`);
});
