import assert from "node:assert/strict";
import { join } from "node:path";
import { LeaseUnreadableError } from "./errors.ts";
import {
  acquireLease,
  formatRfc3339,
  isLive,
  LEASE_FILE_NAME,
  LeaseHeldError,
  LeaseLockTimeoutError,
  LeaseLostError,
  parseLease,
  parseRfc3339,
  readLease,
} from "./lease.ts";

/** A lease exactly as Go's json.MarshalIndent writes it (no trailing newline). */
function goLease(fields: {
  id?: string;
  acquired?: string;
  renewed: string;
  ttl?: string;
  meta?: string;
}): string {
  const meta = fields.meta === undefined ? "" : `,\n  "meta": ${fields.meta}`;
  return `{
  "instance_id": "${fields.id ?? "5f0c3c1e-8d0a-4e53-9b7b-2b0f3f4b9a11"}",
  "pid": 41233,
  "host": "devbox",
  "acquired_at": "${fields.acquired ?? fields.renewed}",
  "renewed_at": "${fields.renewed}",
  "ttl": ${fields.ttl ?? "30000000000"}${meta}
}`;
}

const CONTRACT_EXAMPLE = goLease({
  acquired: "2026-06-18T14:55:33.123456789+02:00",
  renewed: "2026-06-18T14:55:43.12534+02:00",
  meta: `{
    "backend": "none",
    "endpoint": "127.0.0.1:40517"
  }`,
});

Deno.test("parseLease reads the contract's Go-written example", () => {
  const rec = parseLease(CONTRACT_EXAMPLE);
  assert.ok(rec);
  assert.equal(rec.instanceId, "5f0c3c1e-8d0a-4e53-9b7b-2b0f3f4b9a11");
  assert.equal(rec.pid, 41233);
  assert.equal(rec.host, "devbox");
  assert.equal(rec.acquiredAt.toISOString(), "2026-06-18T12:55:33.123Z");
  assert.equal(rec.renewedAt.toISOString(), "2026-06-18T12:55:43.125Z");
  assert.equal(rec.acquiredAtText, "2026-06-18T14:55:33.123456789+02:00");
  assert.equal(rec.renewedAtText, "2026-06-18T14:55:43.12534+02:00");
  assert.equal(rec.ttlNanos, 30_000_000_000);
  assert.equal(rec.ttlMs, 30_000);
  assert.deepEqual(rec.meta, { backend: "none", endpoint: "127.0.0.1:40517" });
  assert.equal(rec.endpoint, "127.0.0.1:40517");
  assert.equal(rec.backend, "none");
  // 12:55:43.12534 + 30 s, rounded up to the millisecond.
  assert.equal(rec.expiresAt.toISOString(), "2026-06-18T12:56:13.126Z");
});

Deno.test("parseRfc3339 handles every fraction length and zone Go writes", () => {
  const cases: [string, string, number][] = [
    ["2026-06-18T14:55:33Z", "2026-06-18T14:55:33.000Z", 0],
    ["2026-06-18T14:55:33.1Z", "2026-06-18T14:55:33.100Z", 100_000_000],
    ["2026-06-18T14:55:33.12Z", "2026-06-18T14:55:33.120Z", 120_000_000],
    ["2026-06-18T14:55:33.123456789Z", "2026-06-18T14:55:33.123Z", 123_456_789],
    ["2026-06-18T14:55:33.000000001+02:00", "2026-06-18T12:55:33.000Z", 1],
    ["2026-06-18T14:55:33.999999999-05:30", "2026-06-18T20:25:33.999Z", 999_999_999],
    ["2026-01-01T00:30:00+01:00", "2025-12-31T23:30:00.000Z", 0],
    ["2026-06-18t14:55:33z", "2026-06-18T14:55:33.000Z", 0],
    // More than 9 digits: Go truncates to nanoseconds.
    ["2026-06-18T14:55:33.1234567891234Z", "2026-06-18T14:55:33.123Z", 123_456_789],
    ["2024-02-29T00:00:00Z", "2024-02-29T00:00:00.000Z", 0],
  ];
  for (const [text, iso, ns] of cases) {
    const t = parseRfc3339(text);
    assert.ok(t, text);
    assert.equal(t.date.toISOString(), iso, text);
    assert.equal(t.nanosecond, ns, text);
  }
  // Go's zero time and years below 100 stay literal.
  assert.equal(parseRfc3339("0001-01-01T00:00:00Z")?.date.getUTCFullYear(), 1);
  assert.equal(parseRfc3339("0050-03-01T00:00:00Z")?.date.getUTCFullYear(), 50);
});

Deno.test("parseRfc3339 rejects what Go rejects", () => {
  for (
    const text of [
      "",
      "2026-06-18",
      "2026-06-18 14:55:33Z",
      "2026-06-18T14:55:33",
      "2026-13-01T00:00:00Z",
      "2026-02-29T00:00:00Z",
      "2026-04-31T00:00:00Z",
      "2026-06-18T24:00:00Z",
      "2026-06-18T14:60:00Z",
      "2026-06-18T14:55:60Z",
      "2026-06-18T14:55:33.Z",
      "2026-06-18T14:55:33+0200",
      "2026-06-18T14:55:33+24:00",
      "26-06-18T14:55:33Z",
    ]
  ) {
    assert.equal(parseRfc3339(text), undefined, text);
  }
});

Deno.test("formatRfc3339 writes Go's RFC3339Nano and round-trips", () => {
  const d = new Date(Date.UTC(2026, 5, 18, 12, 0, 0, 120));
  assert.equal(formatRfc3339(d, true), "2026-06-18T12:00:00.12Z");
  assert.equal(
    formatRfc3339(new Date(Date.UTC(2026, 5, 18, 12, 0, 0, 0)), true),
    "2026-06-18T12:00:00Z",
  );
  for (const ms of [0, 1, 10, 100, 999]) {
    const t = new Date(Date.UTC(2026, 0, 1, 23, 59, 59, ms));
    assert.equal(parseRfc3339(formatRfc3339(t))?.date.getTime(), t.getTime());
    assert.equal(parseRfc3339(formatRfc3339(t, true))?.date.getTime(), t.getTime());
  }
});

Deno.test("parseLease treats corrupt and partial files as no lease", () => {
  const ok = goLease({ renewed: "2026-06-18T14:55:33Z" });
  const bad = [
    "",
    "   ",
    "{",
    ok.slice(0, ok.length - 5), // truncated mid-write
    "null",
    "[]",
    '"lease"',
    "42",
    "{}",
    // missing required fields
    ok.replace(/"instance_id".*\n/, ""),
    ok.replace(/"renewed_at".*\n/, ""),
    ok.replace(',\n  "ttl": 30000000000', ""),
    // wrong types
    ok.replace('"pid": 41233', '"pid": "41233"'),
    ok.replace('"pid": 41233', '"pid": 1.5'),
    ok.replace('"host": "devbox"', '"host": 7'),
    ok.replace('"ttl": 30000000000', '"ttl": "30s"'),
    ok.replace('"ttl": 30000000000', '"ttl": 1.5'),
    goLease({ renewed: "2026-06-18T14:55:33Z", meta: '{"endpoint": 5}' }),
    goLease({ renewed: "2026-06-18T14:55:33Z", meta: '["x"]' }),
    goLease({ renewed: "yesterday" }),
    goLease({ renewed: "2026-06-18T14:55:33Z", acquired: "2026-06-18" }),
  ];
  for (const text of bad) assert.equal(parseLease(text), undefined, text);
});

Deno.test("parseLease fills Go's zero values for optional fields", () => {
  const rec = parseLease(
    '{"instance_id":"a","renewed_at":"2026-06-18T14:55:33Z","ttl":1000000000,"meta":null,"pid":null,"extra":[1]}',
  );
  assert.ok(rec);
  assert.equal(rec.pid, 0);
  assert.equal(rec.host, "");
  assert.equal(rec.acquiredAtText, "");
  assert.equal(rec.acquiredAt.getUTCFullYear(), 1);
  assert.deepEqual(rec.meta, {});
  assert.equal(rec.endpoint, "");
  assert.equal(rec.backend, "");
});

Deno.test("isLive is strict and exact to the nanosecond", () => {
  const rec = parseLease(
    goLease({ renewed: "2026-01-01T00:00:00.1234567Z", ttl: "1000000000" }),
  );
  assert.ok(rec);
  // Exact expiry: 00:00:01.1234567.
  assert.ok(isLive(rec, new Date("2026-01-01T00:00:01.123Z")));
  assert.ok(!isLive(rec, new Date("2026-01-01T00:00:01.124Z")));
  const whole = parseLease(goLease({ renewed: "2026-01-01T00:00:00Z", ttl: "1000000000" }));
  assert.ok(whole);
  assert.ok(isLive(whole, new Date("2026-01-01T00:00:00.999Z")));
  assert.ok(!isLive(whole, new Date("2026-01-01T00:00:01Z")), "equality is not live");
});

Deno.test("isLive: expired, future and far-future leases", () => {
  const now = new Date("2026-06-18T12:00:00Z");
  const expired = parseLease(goLease({ renewed: "2026-06-18T11:00:00Z" }));
  const future = parseLease(goLease({ renewed: "2026-06-18T13:00:00+00:00" }));
  const plus2 = parseLease(goLease({ renewed: "2026-06-18T13:59:50+02:00" })); // 11:59:50Z
  const minus = parseLease(goLease({ renewed: "2026-06-18T06:29:50-05:30" })); // 11:59:50Z
  const huge = parseLease(goLease({ renewed: "2026-06-18T11:00:00Z", ttl: "9223372036854775807" }));
  assert.ok(expired && future && plus2 && minus && huge);
  assert.ok(!isLive(expired, now));
  assert.ok(isLive(future, now), "a renewed_at in the future is live (no skew allowance)");
  assert.ok(isLive(plus2, now));
  assert.ok(isLive(minus, now));
  assert.ok(isLive(huge, now));
});

Deno.test("readLease: missing file, Go fixture, corrupt file", async () => {
  const root = await Deno.makeTempDir();
  try {
    assert.equal(await readLease(root), undefined);
    assert.equal(await readLease(join(root, "no-such-dir")), undefined);
    await Deno.writeTextFile(join(root, LEASE_FILE_NAME), CONTRACT_EXAMPLE);
    assert.equal((await readLease(root))?.endpoint, "127.0.0.1:40517");
    // A file that is there but is not a lease is an error naming it, not "no lease".
    await Deno.writeTextFile(join(root, LEASE_FILE_NAME), '{"instance_id": "a", "pid');
    await assert.rejects(readLease(root), LeaseUnreadableError);
    await Deno.writeTextFile(join(root, LEASE_FILE_NAME), "");
    await assert.rejects(readLease(root), /modeld\.lease: not a modeld lease: the file is empty/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("readLease honours an aborted signal", async () => {
  const root = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(root, LEASE_FILE_NAME), CONTRACT_EXAMPLE);
    const controller = new AbortController();
    controller.abort(new Error("stop"));
    await assert.rejects(readLease(root, { signal: controller.signal }));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("readLease without a deadline touches no timer (Deno loads its timers, ~5 ms, on first use)", async () => {
  const root = await Deno.makeTempDir();
  const timers = globalThis as unknown as Record<"setTimeout" | "clearTimeout", unknown>;
  const saved = { setTimeout: timers.setTimeout, clearTimeout: timers.clearTimeout };
  const calls: string[] = [];
  try {
    await Deno.writeTextFile(join(root, LEASE_FILE_NAME), CONTRACT_EXAMPLE);
    timers.setTimeout = () => calls.push("setTimeout");
    timers.clearTimeout = () => calls.push("clearTimeout");
    assert.equal((await readLease(root))?.endpoint, "127.0.0.1:40517");
    assert.equal(await readLease(join(root, "no-such-dir")), undefined);
  } finally {
    Object.assign(timers, saved);
    await Deno.remove(root, { recursive: true });
  }
  assert.deepEqual(calls, []);
});

// ---------------------------------------------------------------------------
// Writer

async function withRoot(fn: (root: string) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir();
  try {
    await fn(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

async function leaseFiles(root: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(root)) names.push(e.name);
  return names.sort();
}

Deno.test("acquireLease writes exactly the JSON Go writes", () =>
  withRoot(async (root) => {
    const lease = await acquireLease(root, {
      ttlMs: 30_000,
      meta: { endpoint: "127.0.0.1:5000", backend: "none", empty: "", amp: "a&b<c>" },
    });
    const text = await Deno.readTextFile(join(root, LEASE_FILE_NAME));
    assert.ok(!text.endsWith("\n"));
    const lines = text.split("\n");
    assert.deepEqual(lines.slice(1, 7).map((l) => l.trim().split('"')[1]), [
      "instance_id",
      "pid",
      "host",
      "acquired_at",
      "renewed_at",
      "ttl",
    ]);
    assert.equal(lines[1], `  "instance_id": "${lease.instanceId}",`);
    assert.equal(lines[2], `  "pid": ${Deno.pid},`);
    assert.equal(lines[6], '  "ttl": 30000000000,');
    assert.ok(
      /^ {2}"acquired_at": "\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?(Z|[+-]\d\d:\d\d)",$/.test(
        lines[4],
      ),
    );
    assert.deepEqual(lines.slice(7), [
      '  "meta": {',
      '    "amp": "a\\u0026b\\u003cc\\u003e",',
      '    "backend": "none",',
      '    "endpoint": "127.0.0.1:5000"',
      "  }",
      "}",
    ]);
    assert.match(
      lease.instanceId,
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    assert.equal(lease.record.meta.amp, "a&b<c>");
    if (Deno.build.os !== "windows") {
      const info = await Deno.stat(join(root, LEASE_FILE_NAME));
      assert.equal((info.mode ?? 0) & 0o777, 0o600);
    }
    // Only the lease is left: no temp file, no lock directory.
    assert.deepEqual(await leaseFiles(root), [LEASE_FILE_NAME]);
    await lease.release();
  }));

Deno.test("acquireLease omits meta when empty", () =>
  withRoot(async (root) => {
    await using _lease = await acquireLease(root, { ttlMs: 1_000 });
    const text = await Deno.readTextFile(join(root, LEASE_FILE_NAME));
    assert.ok(!text.includes("meta"));
    assert.ok(text.endsWith('"ttl": 1000000000\n}'));
  }));

Deno.test("acquire free, then held; release frees; re-acquire works", () =>
  withRoot(async (root) => {
    const first = await acquireLease(root, { ttlMs: 30_000, meta: { endpoint: "e" } });
    const read = await readLease(root);
    assert.equal(read?.instanceId, first.instanceId);
    assert.ok(read && isLive(read));

    const err = await acquireLease(root, { ttlMs: 30_000 }).catch((e) => e);
    assert.ok(err instanceof LeaseHeldError, String(err));
    assert.equal(err.code, "not_owner");
    assert.equal(err.holder?.instanceId, first.instanceId);
    assert.match(err.message, /held by instance .* \(pid \d+\) until /);

    await first.release();
    assert.equal(await readLease(root), undefined);
    await first.release(); // twice is fine

    const second = await acquireLease(root, { ttlMs: 30_000 });
    assert.notEqual(second.instanceId, first.instanceId);
    await second.release();
  }));

Deno.test("renew keeps ownership and moves renewed_at", () =>
  withRoot(async (root) => {
    await using lease = await acquireLease(root, { ttlMs: 30_000, meta: { backend: "none" } });
    const before = lease.record.renewedAt.getTime();
    await new Promise((r) => setTimeout(r, 5));
    await lease.renew();
    const read = await readLease(root);
    assert.equal(read?.instanceId, lease.instanceId);
    assert.equal(read?.backend, "none");
    assert.equal(read?.acquiredAtText, lease.record.acquiredAtText);
    assert.ok(read!.renewedAt.getTime() > before);
    assert.equal(read?.renewedAtText, lease.record.renewedAtText);
  }));

Deno.test("takeover after expiry mints a new id; old holder loses renew; old release is a no-op", () =>
  withRoot(async (root) => {
    const old = await acquireLease(root, { ttlMs: 50 });
    await new Promise((r) => setTimeout(r, 80));
    const taker = await acquireLease(root, { ttlMs: 30_000 });
    assert.notEqual(taker.instanceId, old.instanceId);

    const err = await old.renew().catch((e) => e);
    assert.ok(err instanceof LeaseLostError, String(err));
    assert.match(err.message, new RegExp(`now held by ${taker.instanceId}`));

    await old.release();
    assert.equal((await readLease(root))?.instanceId, taker.instanceId);
    await taker.release();
  }));

Deno.test("renew after local expiry is lost even when nobody took over", () =>
  withRoot(async (root) => {
    const lease = await acquireLease(root, { ttlMs: 30 });
    await new Promise((r) => setTimeout(r, 60));
    assert.ok(lease.expired());
    await assert.rejects(lease.renew(), LeaseLostError);
    await lease.release();
    assert.equal(await readLease(root), undefined);
  }));

Deno.test("renew of a removed lease is lost", () =>
  withRoot(async (root) => {
    const lease = await acquireLease(root, { ttlMs: 30_000 });
    await Deno.remove(join(root, LEASE_FILE_NAME));
    await assert.rejects(lease.renew(), LeaseLostError);
    await lease.release(); // missing is fine
  }));

Deno.test("takes over a Go-written expired lease and a corrupt lease", () =>
  withRoot(async (root) => {
    const path = join(root, LEASE_FILE_NAME);
    await Deno.writeTextFile(path, goLease({ renewed: "2020-01-01T00:00:00.123456789+02:00" }));
    const a = await acquireLease(root, { ttlMs: 30_000 });
    assert.equal((await readLease(root))?.instanceId, a.instanceId);
    await a.release();

    await Deno.writeTextFile(path, "{ not json");
    const b = await acquireLease(root, { ttlMs: 30_000 });
    assert.equal((await readLease(root))?.instanceId, b.instanceId);
    await b.release();
  }));

Deno.test("refuses a live Go-written lease", () =>
  withRoot(async (root) => {
    const renewed = formatRfc3339(new Date());
    await Deno.writeTextFile(join(root, LEASE_FILE_NAME), goLease({ renewed }));
    await assert.rejects(acquireLease(root, { ttlMs: 30_000 }), LeaseHeldError);
  }));

async function race(root: string, n: number): Promise<void> {
  const results = await Promise.allSettled(
    Array.from({ length: n }, () => acquireLease(root, { ttlMs: 30_000 })),
  );
  const winners = results.filter((r) => r.status === "fulfilled");
  const losers = results.filter((r) => r.status === "rejected");
  assert.equal(winners.length, 1);
  for (const l of losers) assert.ok(l.reason instanceof LeaseHeldError, String(l.reason));
  const winner = (winners[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof acquireLease>>>)
    .value;
  assert.equal((await readLease(root))?.instanceId, winner.instanceId);
  await winner.release();
}

Deno.test("8-way concurrent acquire of a free lease: exactly one winner", () =>
  withRoot((root) => race(root, 8)));

Deno.test("8-way concurrent takeover of an expired lease: exactly one winner", () =>
  withRoot(async (root) => {
    await Deno.writeTextFile(
      join(root, LEASE_FILE_NAME),
      goLease({ renewed: "2020-01-01T00:00:00Z" }),
    );
    await race(root, 8);
  }));

Deno.test("8 processes race for one lease: exactly one winner", () =>
  withRoot(async (root) => {
    const script = join(root, "race.ts");
    const leaseUrl = new URL("./lease.ts", import.meta.url).href;
    await Deno.writeTextFile(
      script,
      `import { acquireLease, LeaseHeldError } from "${leaseUrl}";
const root = Deno.args[0];
try {
  const lease = await acquireLease(root, { ttlMs: 30000 });
  console.log("won " + lease.instanceId);
} catch (err) {
  if (!(err instanceof LeaseHeldError)) throw err;
  console.log("held");
}`,
    );
    const outputs = await Promise.all(
      Array.from({ length: 8 }, () =>
        new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "--no-config",
            "--no-lock",
            "--quiet",
            `--allow-read=${root}`,
            `--allow-write=${root}`,
            script,
            root,
          ],
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).output()),
    );
    const lines = outputs.map((o) => {
      assert.ok(o.success, new TextDecoder().decode(o.stderr));
      return new TextDecoder().decode(o.stdout).trim();
    });
    const won = lines.filter((l) => l.startsWith("won "));
    assert.equal(won.length, 1, lines.join("\n"));
    assert.equal(lines.filter((l) => l === "held").length, 7);
    assert.equal((await readLease(root))?.instanceId, won[0].slice(4));
  }));

Deno.test("a stale acquisition lock directory is reclaimed", () =>
  withRoot(async (root) => {
    const lockDir = join(root, `${LEASE_FILE_NAME}.acquire.lock`);
    await Deno.mkdir(lockDir);
    const old = new Date(Date.now() - 10_000);
    await Deno.utime(lockDir, old, old);
    const started = Date.now();
    const lease = await acquireLease(root, { ttlMs: 30_000 });
    assert.ok(Date.now() - started < 1_000);
    await lease.release();
    assert.deepEqual(await leaseFiles(root), []);
  }));

Deno.test("a fresh acquisition lock is waited for, then times out", () =>
  withRoot(async (root) => {
    const lockDir = join(root, `${LEASE_FILE_NAME}.acquire.lock`);
    await Deno.mkdir(lockDir);
    const err = await acquireLease(root, { ttlMs: 30_000, lockTimeoutMs: 50 }).catch((e) => e);
    assert.ok(err instanceof LeaseLockTimeoutError, String(err));
    assert.equal(err.code, "timeout");
    assert.ok(err.retryable);

    const controller = new AbortController();
    controller.abort();
    await assert.rejects(
      acquireLease(root, { ttlMs: 30_000, signal: controller.signal }),
      LeaseLockTimeoutError,
    );
    // With a short ttl the lock counts as abandoned after 100 ms.
    const lease = await acquireLease(root, { ttlMs: 10 });
    await lease.release();
  }));

Deno.test("acquireLease rejects a non-positive ttl", () =>
  withRoot(async (root) => {
    await assert.rejects(acquireLease(root, { ttlMs: 0 }), /ttl must be positive/);
  }));
