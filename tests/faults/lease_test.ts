/**
 * Lease faults (issue 8, items 1, 4 and 5): special files, huge files, corrupt
 * files and huge fields named `modeld.lease`. Every outcome must be a record
 * or a `ModeldError`, at once, reading at most a bounded number of bytes.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  AbortedError,
  DaemonNotRunningError,
  DaemonStaleError,
  detect,
  ModeldClient,
  ModeldError,
  probe,
  readLease,
  TimeoutError,
} from "../../mod.ts";
import { main } from "../../cli.ts";
import { bufferIo } from "../../lib/cli/io.ts";

const LEASE = "modeld.lease";

function goLease(fields: { id?: string; renewed?: string; endpoint?: string } = {}): string {
  return JSON.stringify(
    {
      instance_id: fields.id ?? "5f0c3c1e-8d0a-4e53-9b7b-2b0f3f4b9a11",
      pid: 41233,
      host: "devbox",
      acquired_at: "2026-06-18T14:55:33.123456789+02:00",
      renewed_at: fields.renewed ?? "2026-06-18T14:55:43.12534+02:00",
      ttl: 30000000000,
      meta: { backend: "none", endpoint: fields.endpoint ?? "127.0.0.1:40517" },
    },
    null,
    2,
  );
}

async function withRoot(fn: (root: string, path: string) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir();
  try {
    await fn(root, join(root, LEASE));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

async function sh(cmd: string, ...args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) throw new Error(`${cmd} failed: ${new TextDecoder().decode(out.stderr)}`);
}

/** Asserts `readLease` refuses the file as unreadable, naming the path, within `ms`. */
async function assertUnreadable(root: string, path: string, why: RegExp, ms = 1000) {
  const t0 = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"hung">((resolve) => timer = setTimeout(() => resolve("hung"), ms));
  const read = readLease(root).then((rec) => ({ rec }), (err: unknown) => ({ err }));
  const outcome = await Promise.race([read, timeout]);
  clearTimeout(timer);
  assert.notEqual(outcome, "hung", `readLease did not answer within ${ms} ms`);
  const { err, rec } = outcome as { err?: unknown; rec?: unknown };
  assert.equal(rec, undefined, "a record was returned");
  assert.ok(err instanceof ModeldError, `not a ModeldError: ${err}`);
  assert.equal(err.name, "LeaseUnreadableError", err.message);
  assert.equal(err.code, "lease_unreadable");
  assert.ok(err.message.includes(path), `the message names the path: ${err.message}`);
  assert.match(err.message, why);
  return performance.now() - t0;
}

// ---------------------------------------------------------------------------
// Item 1: size, type and time limits

Deno.test("item 1: a FIFO named modeld.lease is refused at once, never opened for a blocking read", () =>
  withRoot(async (root, path) => {
    await sh("mkfifo", path);
    try {
      await assertUnreadable(root, path, /FIFO/);
    } catch (err) {
      // Unblock a reader stuck in open(2) (the pre-fix behaviour), then fail.
      if (String(err).includes("did not answer")) (await Deno.open(path, { write: true })).close();
      throw err;
    }
  }));

Deno.test("item 1: a symlink to /dev/zero is refused without reading it", () =>
  withRoot(async (root, path) => {
    await sh("ln", "-s", "/dev/zero", path);
    await assertUnreadable(root, path, /device/);
  }));

Deno.test("item 1: a directory named modeld.lease is a typed error, not a raw IsADirectory", () =>
  withRoot(async (root, path) => {
    await Deno.mkdir(path);
    await assertUnreadable(root, path, /directory/);
  }));

Deno.test("item 1: a symlink to a directory or to /dev/null is refused", () =>
  withRoot(async (root, path) => {
    await sh("ln", "-s", root, path);
    await assertUnreadable(root, path, /directory/);
    await Deno.remove(path);
    await sh("ln", "-s", "/dev/null", path);
    await assertUnreadable(root, path, /device/);
  }));

Deno.test("item 1: a 50 MB garbage file is refused from its size, in well under 100 ms", () =>
  withRoot(async (root, path) => {
    const file = await Deno.open(path, { write: true, create: true });
    await file.truncate(50 * 1024 * 1024); // sparse: size is what counts
    file.close();
    const ms = await assertUnreadable(root, path, /larger than/);
    assert.ok(ms < 100, `took ${ms.toFixed(1)} ms`);
  }));

Deno.test("item 1: an aborted signal is AbortedError, a timeout reason TimeoutError, timeoutMs is accepted", () =>
  withRoot(async (root, path) => {
    await Deno.writeTextFile(path, goLease());
    const aborted = new AbortController();
    aborted.abort(new Error("stop"));
    await assert.rejects(readLease(root, { signal: aborted.signal }), AbortedError);
    const timedOut = new AbortController();
    timedOut.abort(new DOMException("late", "TimeoutError"));
    await assert.rejects(readLease(root, { signal: timedOut.signal }), TimeoutError);
    // A generous deadline on a small regular file: read normally.
    const rec = await readLease(root, { timeoutMs: 5_000 } as Parameters<typeof readLease>[1]);
    assert.equal(rec?.endpoint, "127.0.0.1:40517");
  }));

Deno.test("item 1: one client call reads the lease once (was twice for an expired lease)", () =>
  withRoot(async (root, path) => {
    await Deno.writeTextFile(path, goLease({ renewed: "2020-01-01T00:00:00Z" }));
    const reads = spyLeaseReads(path);
    try {
      await using client = new ModeldClient({ dataRoot: root });
      await assert.rejects(client.status(), DaemonStaleError);
      assert.equal(reads.count, 1);
      reads.count = 0;
      await probe({ dataRoot: root });
      assert.equal(reads.count, 1);
    } finally {
      reads.restore();
    }
  }));

/** Counts file-system entry points used to read `path` (before and after the fix). */
function spyLeaseReads(path: string): { count: number; restore(): void } {
  const spy = { count: 0, restore: () => {} };
  const d = Deno as unknown as Record<string, (...a: unknown[]) => unknown>;
  const names = ["readTextFile", "readFile", "lstat"] as const;
  const saved = names.map((n) => d[n]);
  for (const [i, n] of names.entries()) {
    d[n] = (...args: unknown[]) => {
      if (String(args[0]) === path) spy.count++;
      return saved[i].apply(Deno, args);
    };
  }
  spy.restore = () => names.forEach((n, i) => d[n] = saved[i]);
  return spy;
}

// ---------------------------------------------------------------------------
// Item 4: a corrupt lease is reported as unreadable, with its path

for (
  const [what, content] of [
    ["random bytes", crypto.getRandomValues(new Uint8Array(512))],
    ["an empty file", new Uint8Array(0)],
    ['{"instance_id":5}', new TextEncoder().encode('{"instance_id":5}')],
  ] as const
) {
  Deno.test(`item 4: a lease of ${what} says the lease is unreadable and where it is`, () =>
    withRoot(async (root, path) => {
      await Deno.writeFile(path, content);
      await assertUnreadable(root, path, /not a modeld lease/);
      const found = await detect({ dataRoot: root });
      assert.equal(found.state, "not_running"); // Go's verdict: a corrupt lease is no owner
      const p = await probe({ dataRoot: root });
      assert.ok(p.error instanceof DaemonNotRunningError);
      assert.match(p.error.message, /lease .* is unreadable/);
      assert.ok(p.error.message.includes(path), p.error.message);
      assert.ok(!p.error.message.includes("no lease"), p.error.message);
      await using client = new ModeldClient({ dataRoot: root });
      const err = await client.status().catch((e) => e);
      assert.ok(err instanceof DaemonNotRunningError);
      assert.ok(err.message.includes(path), err.message);
      assert.equal((err.cause as Error)?.name, "LeaseUnreadableError");
      const io = bufferIo();
      assert.equal(await main(["status", "--data-root", root], io), 3);
      assert.match(io.stdout.text, /unreadable/);
      assert.ok(io.stdout.text.includes(path), io.stdout.text);
    }));
}

// ---------------------------------------------------------------------------
// Item 5: what comes from the lease is bounded

Deno.test("item 5: a 50 MB instance_id neither reaches the output nor costs 50 MB", () =>
  withRoot(async (root, path) => {
    await Deno.writeTextFile(path, goLease({ id: "a".repeat(50 * 1024 * 1024) }));
    const io = bufferIo();
    assert.equal(await main(["status", "--data-root", root], io), 3);
    assert.ok(
      io.stdout.text.length + io.stderr.text.length < 4096,
      `${io.stdout.text.length} bytes`,
    );
    assert.match(io.stdout.text, /unreadable/);
  }));

Deno.test("item 5: an instance_id that fits the size cap but is no instance id is refused", () =>
  withRoot(async (root, path) => {
    await Deno.writeTextFile(
      path,
      goLease({ id: "x".repeat(20_000), renewed: new Date().toISOString() }),
    );
    await assertUnreadable(root, path, /instance_id/);
    await Deno.writeTextFile(
      path,
      goLease({ id: "a\u001b]0;pwned\u0007", renewed: new Date().toISOString() }),
    );
    await assertUnreadable(root, path, /instance_id/);
    const io = bufferIo();
    assert.equal(await main(["status", "--json", "--data-root", root], io), 3);
    assert.ok(io.stdout.text.length < 4096);
    assert.ok(!io.stdout.text.includes("\u001b"));
  }));
