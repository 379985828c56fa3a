/**
 * Endpoint faults (issue 8, items 2 and 3): a live lease naming an endpoint
 * the client cannot dial, or a wildcard address. Go's probe reports the first
 * as unreachable; a wildcard means "this host", dialled on loopback.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  DaemonUnreachableError,
  ModeldClient,
  ModeldError,
  PermissionNeededError,
  probe,
} from "../../mod.ts";
import { main } from "../../cli.ts";
import { bufferIo } from "../../lib/cli/io.ts";
import { startTestDaemon } from "../../testing.ts";

/** Writes a live Go-format lease naming `endpoint` into a fresh data root. */
async function leaseRoot(
  endpoint: string,
  instanceId: string = crypto.randomUUID(),
): Promise<string> {
  const root = await Deno.makeTempDir();
  const now = new Date().toISOString();
  await Deno.writeTextFile(
    join(root, "modeld.lease"),
    JSON.stringify({
      instance_id: instanceId,
      pid: 1,
      host: "h",
      acquired_at: now,
      renewed_at: now,
      ttl: 60_000_000_000,
      meta: { backend: "llama", endpoint },
    }),
  );
  return root;
}

// Go's net.SplitHostPort / net.Dial fail on each of these, so Go's probe says
// unreachable. 0x7f000001 and 127.1 are no IP literals to Go (ParseIP refuses
// them; they would be looked up as DNS names) though the URL parser reads them as 127.0.0.1.
const MALFORMED = [
  "[::1",
  "127.0.0.1:1 ",
  " 127.0.0.1:1",
  "user@127.0.0.1:1",
  "127.0.0.1:1@203.0.113.5:443",
  "127.0.0.1:99999",
  "127.0.0.1:0",
  "127.0.0.1:-1",
  "127.0.0.1:",
  "127.0.0.1",
  "http://127.0.0.1:1",
  "0x7f000001:80",
  "127.1:80",
  "2130706433:80",
  "0177.0.0.1:80",
  "[::1]x:80",
  "[127.0.0.1:80",
  "[]:80",
  "127.0.0.1:1/x",
  "127.0.0.1:1?x",
  "127.0.0.1:1#x",
  "exa mple:1",
  "%31%32%37.0.0.1:1",
];

Deno.test("item 2: probe() reports a malformed lease endpoint as unreachable, never a raw TypeError", async () => {
  for (const endpoint of MALFORMED) {
    const root = await leaseRoot(endpoint);
    try {
      const t0 = performance.now();
      let result;
      try {
        result = await probe({ dataRoot: root, timeoutMs: 2_000 });
      } catch (err) {
        assert.fail(
          `${JSON.stringify(endpoint)}: probe threw ${(err as Error).name}: ${
            (err as Error).message
          }`,
        );
      }
      assert.equal(result.state, "unreachable", JSON.stringify(endpoint));
      assert.ok(result.error instanceof DaemonUnreachableError, JSON.stringify(endpoint));
      assert.match(
        result.error.message,
        /not a modeld endpoint|cannot dial/i,
        result.error.message,
      );
      assert.ok(performance.now() - t0 < 1_000, `${JSON.stringify(endpoint)} took too long`);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  }
});

Deno.test("item 2: openSession and the CLI see a malformed lease endpoint as unreachable (exit 4)", async () => {
  for (const endpoint of ["[::1", "user@127.0.0.1:1", "http://127.0.0.1:1", "0x7f000001:80"]) {
    const root = await leaseRoot(endpoint);
    try {
      await using client = new ModeldClient({ dataRoot: root });
      const err = await client.openSession({ name: "m", path: "/m.gguf" }).catch((e) => e);
      assert.ok(
        err instanceof DaemonUnreachableError,
        `${endpoint}: ${err?.name}: ${err?.message}`,
      );
      assert.ok(err.retryable);
      const io = bufferIo();
      assert.equal(await main(["status", "--data-root", root], io), 4, io.stderr.text);
      assert.match(io.stdout.text, /does not answer/);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  }
});

Deno.test("item 2: 0x7f000001:80 never asks for a permission already granted", async () => {
  const root = await leaseRoot("0x7f000001:80");
  try {
    const result = await probe({ dataRoot: root }).catch((e) => e);
    assert.ok(!(result instanceof PermissionNeededError), String(result?.message));
    assert.equal(result.state, "unreachable");
    assert.match(result.error.message, /127\.0\.0\.1/); // says what to write instead
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("item 2: a malformed address given to client.endpoint() is a typed error, nothing dialled", async () => {
  await using client = new ModeldClient({ dataRoot: await Deno.makeTempDir() });
  for (const addr of ["[::1", "user@127.0.0.1:1", "127.0.0.1:99999", "0x7f000001:80"]) {
    const err = await client.endpoint("b", addr).catch((e) => e);
    assert.ok(err instanceof ModeldError, `${addr}: ${err}`);
    assert.equal(err.code, "invalid_argument", `${addr}: ${err.message}`);
  }
});

for (const wildcard of ["[::]", "0.0.0.0", ""]) {
  Deno.test(`item 3: a lease naming the wildcard ${wildcard || "(empty host)"}:PORT is dialled on 127.0.0.1 with --allow-net=127.0.0.1`, async () => {
    await using daemon = await startTestDaemon();
    const port = daemon.endpoint.slice(daemon.endpoint.lastIndexOf(":") + 1);
    const root = await leaseRoot(`${wildcard}:${port}`, daemon.instanceId);
    try {
      const p = await probe({ dataRoot: root, timeoutMs: 5_000 });
      assert.equal(p.state, "running", p.error?.message);
      assert.equal(p.endpoint, `${wildcard}:${port}`); // reported as the lease wrote it
      await using client = new ModeldClient({ dataRoot: root });
      assert.equal((await client.health()).instanceId, daemon.instanceId);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  });
}
