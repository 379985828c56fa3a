/**
 * The real Go client of contenox/runtime v0.36.0 (`transportgrpc.DialLeader`,
 * tests/interop/bin/goclient) judges the llama.cpp daemon: the contract
 * checklist it runs against the test daemon and the real Go server, here
 * against real tokens from the synthetic GGUF.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { serve } from "../../daemon.ts";
import { syntheticGguf } from "../../lib/daemon/llama/synthetic_gguf.ts";
import { binPath, PEER_VERSION } from "../interop/peers.ts";

Deno.test(`[go client ${PEER_VERSION}] the llama.cpp daemon passes the Go client's checklist with real tokens`, async () => {
  await Deno.mkdir(".cache/tmp/daemon", { recursive: true });
  const root = await Deno.makeTempDir({ dir: join(Deno.cwd(), ".cache/tmp/daemon") });
  const model = join(root, "tiny.gguf");
  await Deno.writeFile(model, syntheticGguf());
  await using daemon = await serve({ dataRoot: root, threads: 1, idleTtlMs: 0 });
  const out = await new Deno.Command(binPath("goclient"), {
    args: [
      "--endpoint",
      daemon.endpoint,
      "--instance",
      daemon.instanceId,
      "--overflow-detail",
      "--model",
      model,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  assert.deepEqual(
    lines,
    [
      "ok health",
      "ok round trip",
      "ok stale fence",
      "ok overflow",
      "ok slot control",
      "ok model store",
    ],
    new TextDecoder().decode(out.stderr),
  );
  assert.equal(out.code, 0);
});
