/**
 * Issue 10: the client keeps the parsed lease and reads the file again only
 * when its stamp changed or a call failed, and still notices every restart:
 * a new lease file (restart on the same data root), a lease rewritten in place
 * with the same size and modification time, an owner that died (stale lease),
 * and a daemon gone while its lease file stays untouched.
 */
import assert from "node:assert/strict";
import { startTestDaemon } from "../testing.ts";
import { ConnectionError, DaemonStaleError, ModeldClient, ModeldError } from "../mod.ts";
import { LeaseCache } from "./lease_cache.ts";
import { leasePath } from "./lease.ts";

/**
 * Counts the reads of one file: every read of the lease starts with an
 * `lstat` of it (a stamp is a `stat`), so this counts actual file reads.
 */
function countReads(path: string): { count: number } & Disposable {
  const fs = Deno as unknown as { lstat: (p: string | URL) => Promise<Deno.FileInfo> };
  const lstat = fs.lstat;
  const reads = {
    count: 0,
    [Symbol.dispose]: () => {
      fs.lstat = lstat;
    },
  };
  fs.lstat = (p) => {
    if (String(p) === path) reads.count++;
    return lstat.call(Deno, p);
  };
  return reads;
}

async function tempRoot(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "lease-cache-" });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

Deno.test("calls on an unchanged lease read the file once, not once per call", async () => {
  const dataRoot = await tempRoot();
  try {
    await using daemon = await startTestDaemon({ dataRoot });
    await using client = new ModeldClient({ dataRoot });
    using reads = countReads(leasePath(dataRoot));
    for (let i = 0; i < 20; i++) {
      assert.equal((await client.health()).instanceId, daemon.instanceId);
    }
    await client.status();
    assert.equal(reads.count, 1);
  } finally {
    await Deno.remove(dataRoot, { recursive: true });
  }
});

Deno.test("a restart on the same data root (new instance, new port) is noticed on the next call", async () => {
  const dataRoot = await tempRoot();
  try {
    await using client = new ModeldClient({ dataRoot });
    const first = await startTestDaemon({ dataRoot });
    assert.equal((await client.health()).instanceId, first.instanceId);
    await first.stop();
    await using second = await startTestDaemon({ dataRoot });
    assert.notEqual(second.endpoint, first.endpoint);
    assert.equal((await client.health()).instanceId, second.instanceId);
    assert.equal(await client.localEndpointAddr(), second.endpoint);
  } finally {
    await Deno.remove(dataRoot, { recursive: true });
  }
});

/** Rewrites the lease of `dataRoot` in place (same file) with `holderRoot`'s, padded to the same size. */
async function replaceInPlace(dataRoot: string, holderRoot: string): Promise<void> {
  const path = leasePath(dataRoot);
  const oldText = await Deno.readTextFile(path);
  const newText = JSON.stringify(JSON.parse(await Deno.readTextFile(leasePath(holderRoot))));
  assert.ok(newText.length <= oldText.length);
  await Deno.writeTextFile(path, newText.padEnd(oldText.length, " "));
}

Deno.test("a lease rewritten in place by a new instance is noticed, though its size and inode are the same", async () => {
  const dataRoot = await tempRoot();
  const otherRoot = await tempRoot();
  try {
    // The old owner keeps serving: only the lease can tell the client to move.
    await using old = await startTestDaemon({ dataRoot });
    await using replacement = await startTestDaemon({ dataRoot: otherRoot });
    await using client = new ModeldClient({ dataRoot });
    assert.equal((await client.health()).instanceId, old.instanceId);
    const before = await Deno.stat(leasePath(dataRoot));
    await delay(5); // a later millisecond than the old lease's write
    await replaceInPlace(dataRoot, otherRoot);
    const after = await Deno.stat(leasePath(dataRoot));
    assert.deepEqual([after.ino, after.size], [before.ino, before.size], "same file, same size");
    assert.equal((await client.health()).instanceId, replacement.instanceId);
  } finally {
    await Deno.remove(dataRoot, { recursive: true });
    await Deno.remove(otherRoot, { recursive: true });
  }
});

Deno.test("a rewrite no stat can see (mtime set back) is noticed once the old owner stops serving", async () => {
  // Deno reports ctime to the second, so size, inode and a restored mtime can
  // hide a rewrite. The old owner finds it lost the lease at its next renewal
  // (ttl/3) and stops serving; the failed call makes the client read the lease.
  const dataRoot = await tempRoot();
  const otherRoot = await tempRoot();
  try {
    await using old = await startTestDaemon({ dataRoot, ttlMs: 600 });
    await using replacement = await startTestDaemon({ dataRoot: otherRoot });
    await using client = new ModeldClient({ dataRoot });
    assert.equal((await client.health()).instanceId, old.instanceId);
    const before = await Deno.stat(leasePath(dataRoot));
    await replaceInPlace(dataRoot, otherRoot);
    await Deno.utime(leasePath(dataRoot), before.atime!, before.mtime!);
    const answers: string[] = [];
    const deadline = Date.now() + 5_000;
    while (answers.at(-1) !== replacement.instanceId && Date.now() < deadline) {
      answers.push(await client.health().then((h) => h.instanceId, (e) => e.name));
      await delay(20);
    }
    assert.equal(answers.at(-1), replacement.instanceId, answers.join(", "));
  } finally {
    await Deno.remove(dataRoot, { recursive: true });
    await Deno.remove(otherRoot, { recursive: true });
  }
});

Deno.test("a lease whose owner died is stale once it expires, judged at the call from the kept lease", async () => {
  const dataRoot = await tempRoot();
  try {
    const daemon = await startTestDaemon({ dataRoot, ttlMs: 600 });
    await using client = new ModeldClient({ dataRoot });
    assert.equal((await client.health()).instanceId, daemon.instanceId);
    await daemon.kill(); // the lease file stays, nobody renews it
    const lease = JSON.parse(await Deno.readTextFile(leasePath(dataRoot)));
    const expires = Date.parse(lease.renewed_at) + lease.ttl / 1e6;
    await delay(Math.max(0, expires - Date.now()) + 20);
    using reads = countReads(leasePath(dataRoot));
    const err = await client.health().catch((e) => e);
    assert.ok(err instanceof DaemonStaleError, `${err}`);
    assert.equal(err.state, "stale");
    assert.equal(reads.count, 0, "the file did not change: the kept lease was judged");
    await daemon.stop();
  } finally {
    await Deno.remove(dataRoot, { recursive: true });
  }
});

Deno.test("after a call failed on a lost connection, the next call reads the lease again", async () => {
  const dataRoot = await tempRoot();
  const daemonRoot = await tempRoot();
  try {
    const daemon = await startTestDaemon({ dataRoot: daemonRoot });
    // A copy of the daemon's lease that nobody renews or removes: it stays
    // live and unchanged when the daemon goes.
    await Deno.copyFile(leasePath(daemonRoot), leasePath(dataRoot));
    await using client = new ModeldClient({ dataRoot });
    using reads = countReads(leasePath(dataRoot));
    await client.health();
    await client.health();
    assert.equal(reads.count, 1);
    await daemon.kill();
    const err = await client.health().catch((e) => e);
    assert.ok(err instanceof ConnectionError, `${err}`);
    assert.equal(reads.count, 1);
    await client.health().catch((e) => assert.ok(e instanceof ModeldError, `${e}`));
    assert.equal(reads.count, 2, "read again after the failure");
    await daemon.stop();
  } finally {
    await Deno.remove(dataRoot, { recursive: true });
    await Deno.remove(daemonRoot, { recursive: true });
  }
});

Deno.test("LeaseCache: forget() reads the file again; another root is never served from the cache", async () => {
  const a = await tempRoot();
  const b = await tempRoot();
  try {
    await using daemon = await startTestDaemon({ dataRoot: a });
    const leases = new LeaseCache();
    using reads = countReads(leasePath(a));
    const first = await leases.read(a);
    assert.equal(first.lease?.instanceId, daemon.instanceId);
    first.skipped.push("--allow-env=X"); // a caller's change stays its own
    const again = await leases.read(a);
    assert.deepEqual(again.skipped, []);
    assert.equal(reads.count, 1);
    leases.forget();
    await leases.read(a);
    assert.equal(reads.count, 2);
    assert.equal((await leases.read(b)).lease, undefined);
    assert.equal((await leases.read(a)).lease?.instanceId, daemon.instanceId);
  } finally {
    await Deno.remove(a, { recursive: true });
    await Deno.remove(b, { recursive: true });
  }
});
