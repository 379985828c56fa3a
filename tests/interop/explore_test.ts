import { ModeldClient } from "../../mod.ts";
import { startPeer } from "./peers.ts";

Deno.test("explore", async () => {
  await using peer = await startPeer({ mode: "memory" });
  {
    await using client = new ModeldClient({ dataRoot: peer.dataRoot });
    await using s = await client.openSession({ name: "m", type: "llama", path: "/x" }, {
      config: { numCtx: 100 },
    });
    console.log(s.handle, await s.ensurePrefix({ text: "hello" }));
    await s.prefillSuffix({ text: " world" });
    console.log(
      await s.decode({ maxTokens: 3, seed: 9007199254740993n, temperature: 0.5 }).collect(),
    );
    console.log(await s.explainContext());
    console.log(await s.snapshot());
  }
  for (const e of await peer.log()) console.log(JSON.stringify(e));
});
